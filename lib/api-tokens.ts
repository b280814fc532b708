import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { OPERATOR_PATTERN, TENANT_PATTERN } from './tenant.js';

/**
 * What a token may do. `query`: ask, stream and give feedback; `ingest`: add and delete documents; `operator`:
 * approvals, parameters and evaluation control, as the operator the token names.
 */
export const SCOPES = ['query', 'ingest', 'operator'] as const;
export type Scope = (typeof SCOPES)[number];

/** One API token as configured: only its SHA-256 is known to the server, bound to one tenant. */
export interface ApiToken {
  tenant: string;
  sha256: Buffer;
  /** What the token may do; `query` alone unless the entry names more (`operator=` adds `operator`). */
  scopes: ReadonlySet<Scope>;
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
  scopes: ReadonlySet<Scope>;
}

export class ApiTokenFormatError extends Error {
  override readonly name = 'ApiTokenFormatError';
}

const ENTRY_FORMAT = 'tenant:sha256hex[:YYYY-MM-DD][:operator=<name>][:scopes=<scope>+<scope>]';

/** `YYYY-MM-DD` as the UTC midnight it names, or undefined for anything else, including days no month has. */
function parseDay(text: string): Date | undefined {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return undefined;
  const at = new Date(`${text}T00:00:00Z`);
  // Date rolls an impossible day over (2027-02-31 becomes 3 March): only a day that reads back the same is one.
  return !Number.isNaN(at.getTime()) && at.toISOString().slice(0, 10) === text ? at : undefined;
}

function parseScopes(text: string, entry: number): Set<Scope> {
  const names = text.split('+');
  const unknown = names.filter((name) => !(SCOPES as readonly string[]).includes(name));
  if (names.length === 0 || unknown.length > 0) {
    throw new ApiTokenFormatError(
      `entry ${entry}: scopes must be ${SCOPES.join(', ')} joined by '+'${unknown.length ? ` (not ${unknown.map((n) => `'${n}'`).join(', ')})` : ''}`,
    );
  }
  return new Set(names as Scope[]);
}

/**
 * Parses `RAGLINE_API_TOKENS`: comma-separated `tenant:sha256hex` entries, each optionally followed by
 * `:YYYY-MM-DD`, the UTC day from which the token is refused, by `:operator=<name>` for an operator's token, and by
 * `:scopes=<scope>+<scope>` (see {@link SCOPES}). An entry without `scopes=` has the `query` scope; `operator=` adds
 * `operator`, and the `operator` scope needs an operator's name (approvals and the audit log record it).
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
        throw new ApiTokenFormatError(`entry ${i + 1} must be ${ENTRY_FORMAT}`);
      }
      let expiresAt: Date | undefined;
      let operator: string | undefined;
      let scopes: Set<Scope> | undefined;
      for (const extra of extras) {
        if (extra.startsWith('operator=')) {
          const name = extra.slice('operator='.length);
          if (operator !== undefined || !OPERATOR_PATTERN.test(name))
            throw new ApiTokenFormatError(
              `entry ${i + 1}: operator must be 1–100 letters, digits, '.', '_', '@' or '-'`,
            );
          operator = name;
          continue;
        }
        if (extra.startsWith('scopes=')) {
          if (scopes !== undefined) throw new ApiTokenFormatError(`entry ${i + 1}: scopes given twice`);
          scopes = parseScopes(extra.slice('scopes='.length), i + 1);
          continue;
        }
        const at = parseDay(extra);
        if (expiresAt !== undefined || at === undefined)
          throw new ApiTokenFormatError(`entry ${i + 1}: expiry must be a real day as YYYY-MM-DD, given once`);
        expiresAt = at;
      }
      scopes ??= new Set<Scope>(['query']);
      if (operator !== undefined) scopes.add('operator');
      if (scopes.has('operator') && operator === undefined)
        throw new ApiTokenFormatError(`entry ${i + 1}: the operator scope needs operator=<name>`);
      const token: ApiToken = { tenant, sha256: Buffer.from(hash, 'hex'), scopes };
      if (expiresAt) token.expiresAt = expiresAt;
      if (operator !== undefined) token.operator = operator;
      return token;
    });
}

export interface CreateApiTokenOptions {
  /** The UTC day (`YYYY-MM-DD`) from which the token is refused; it must lie ahead of `now`. */
  expires?: string;
  /** An operator's token acts as this name; implies the `operator` scope. */
  operator?: string;
  /** What the token may do besides what `operator` implies. @default ['query'] */
  scopes?: readonly Scope[];
  /** The instant the expiry is checked against. @default new Date() */
  now?: Date;
}

/** A new random token and the `RAGLINE_API_TOKENS` entry that accepts it; the token itself is shown once. */
export function createApiToken(tenant: string, options: CreateApiTokenOptions = {}): { token: string; entry: string } {
  const { expires, operator, scopes, now = new Date() } = options;
  if (expires !== undefined) {
    const at = parseDay(expires);
    if (at === undefined) throw new ApiTokenFormatError(`expiry must be a real day as YYYY-MM-DD, not '${expires}'`);
    if (at.getTime() <= now.getTime())
      throw new ApiTokenFormatError(`expiry ${expires} has passed: the token would be refused from the start`);
  }
  const token = `rgl_${randomBytes(24).toString('base64url')}`;
  const hash = createHash('sha256').update(token).digest('hex');
  const fields = [tenant, hash];
  if (expires) fields.push(expires);
  if (operator !== undefined) fields.push(`operator=${operator}`);
  // The entry names its scopes only where they differ from what parsing assumes (query, plus operator for a name).
  const wanted = new Set<Scope>(scopes ?? ['query']);
  if (operator !== undefined) wanted.add('operator');
  const assumed = operator === undefined ? ['query'] : ['query', 'operator'];
  if (wanted.size !== assumed.length || assumed.some((scope) => !wanted.has(scope as Scope)))
    fields.push(`scopes=${SCOPES.filter((scope) => wanted.has(scope)).join('+')}`);
  const entry = fields.join(':');
  parseApiTokens(entry);
  return { token, entry };
}

/** The scope a caller lacks for an action, or undefined when it has it. */
export function missingScope(caller: ApiCaller, scope: Scope): Scope | undefined {
  return caller.scopes.has(scope) ? undefined : scope;
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
  const caller: ApiCaller = { tenant: found.tenant, key: presented.toString('hex').slice(0, 16), scopes: found.scopes };
  if (found.operator !== undefined) caller.operator = found.operator;
  return { ok: true, caller };
}
