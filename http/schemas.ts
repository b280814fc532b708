import { z } from 'zod';
import { TENANT_PATTERN } from '../contracts/query.js';

/** A tenant named in a request, checked against the same pattern the workflows check it against. */
export const Tenant = z.string().regex(TENANT_PATTERN, "1–63 letters, digits, '-' or '_'");
