import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { TENANT_PATTERN } from './tenant.js';

/** One API token as configured: only its SHA-256 is known to the server, bound to one tenant. */
export interface ApiToken {
  tenant: string;
  sha256: Buffer;
  /** The token stops working at this instant. */
  expiresAt?: Date;
  /**
   * Set on an operator's token: the person it acts as, whose name the improvement workflow checks against its
   * approvers allowlist. An app's token has none and so can never decide an approval.
   */
  operator?: string;
}

/** The caller a request was authenticated as. `key` identifies the token (for rate limits and logs) without revealing it. */
export interface ApiCaller {
  tenant: string;
  key: string;
  /** The operator the token belongs to; undefined for an app's token. */
  operator?: string;
}

export class ApiTokenFormatError extends Error {
  override readonly name = 'ApiTokenFormatError';
}

const OPERATOR_PATTERN = /^[A-Za-z0-9._@-]{1,100}$/;

/**
 * Parses `RAGLINE_API_TOKENS`: comma-separated `tenant:sha256hex` entries, each optionally followed by
 * `:YYYY-MM-DD`, the UTC day from which the token is refused, and by `:operator=<name>` for an operator's token.
 */
export function parseApiTokens(raw: string | undefined): ApiToken[] {
  if (raw === undefined || raw.trim() === '') return [];
  return raw
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .map((entry, i) => {
      const [tenant = '', hash = '', ...extras] = entry.split(':');
      if (!TENANT_PATTERN.test(tenant) || !/^[0-9a-f]{64}$/i.test(hash)) {
        throw new ApiTokenFormatError(`entry ${i + 1} must be tenant:sha256hex[:YYYY-MM-DD][:operator=<name>]`);
      }
      const token: ApiToken = { tenant, sha256: Buffer.from(hash, 'hex') };
      for (const extra of extras) {
        if (extra.startsWith('operator=')) {
          const name = extra.slice('operator='.length);
          if (token.operator !== undefined || !OPERATOR_PATTERN.test(name))
            throw new ApiTokenFormatError(
              `entry ${i + 1}: operator must be 1–100 letters, digits, '.', '_', '@' or '-'`,
            );
          token.operator = name;
          continue;
        }
        const at = /^\d{4}-\d{2}-\d{2}$/.test(extra) ? new Date(`${extra}T00:00:00Z`) : new Date(NaN);
        if (token.expiresAt !== undefined || Number.isNaN(at.getTime()))
          throw new ApiTokenFormatError(`entry ${i + 1}: expiry must be YYYY-MM-DD, given once`);
        token.expiresAt = at;
      }
      return token;
    });
}

/** A new random token and the `RAGLINE_API_TOKENS` entry that accepts it; the token itself is shown once. */
export function createApiToken(tenant: string, expires?: string, operator?: string): { token: string; entry: string } {
  const token = `rgl_${randomBytes(24).toString('base64url')}`;
  const hash = createHash('sha256').update(token).digest('hex');
  const entry = `${tenant}:${hash}${expires ? `:${expires}` : ''}${operator ? `:operator=${operator}` : ''}`;
  parseApiTokens(entry);
  return { token, entry };
}

export type AuthOutcome = { ok: true; caller: ApiCaller } | { ok: false; reason: 'missing' | 'invalid' | 'expired' };

/**
 * Checks an `Authorization` header against the configured hashes. Every hash is compared, in constant time, whether
 * or not an earlier one matched, so the time taken says nothing about which tokens exist.
 */
export function authenticate(header: string | undefined, tokens: ApiToken[], now = new Date()): AuthOutcome {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!match?.[1]) return { ok: false, reason: 'missing' };
  const presented = createHash('sha256').update(match[1]).digest();
  let found: ApiToken | undefined;
  for (const token of tokens) {
    if (timingSafeEqual(presented, token.sha256) && !found) found = token;
  }
  if (!found) return { ok: false, reason: 'invalid' };
  if (found.expiresAt && now >= found.expiresAt) return { ok: false, reason: 'expired' };
  const caller: ApiCaller = { tenant: found.tenant, key: presented.toString('hex').slice(0, 16) };
  if (found.operator !== undefined) caller.operator = found.operator;
  return { ok: true, caller };
}
