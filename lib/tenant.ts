/**
 * The one definition of a valid tenant name, used by the configuration schema, the clients, the workflows and the
 * activities alike. No runtime dependencies, so workflow code imports it.
 */

/** 1–63 letters, digits, '-' or '_', starting with a letter or digit: safe in keys, file names and workflow ids. */
export const TENANT_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/i;

/** 1–100 letters, digits, '.', '_', '@' or '-': an operator's name, in tokens and in approvers allowlists alike. */
export const OPERATOR_PATTERN = /^[A-Za-z0-9._@-]{1,100}$/;

/** Why a tenant name is invalid, or undefined when it is valid. */
export function tenantProblem(tenant: unknown): string | undefined {
  return typeof tenant === 'string' && TENANT_PATTERN.test(tenant)
    ? undefined
    : `tenant "${String(tenant)}" must be 1–63 letters, digits, '-' or '_'`;
}

/**
 * Ends the tenant part of every per-tenant id (workflow ids, stream channels, cache keys): no tenant name contains
 * it, so `acme` + `eu-set` and `acme-eu` + `set` can never name the same thing, as a '-' separator let them.
 */
export const TENANT_ID_SEPARATOR = ':';

/** `<kind>:<tenant>:<part>:…`, the id of something a tenant owns; `kind` must not contain the separator. */
export function tenantScopedId(kind: string, tenant: string, ...parts: string[]): string {
  return [kind, tenant, ...parts].join(TENANT_ID_SEPARATOR);
}

/** The tenant a {@link tenantScopedId} id belongs to, or undefined for an id of another shape. */
export function tenantOfScopedId(id: string): string | undefined {
  const [, tenant] = id.split(TENANT_ID_SEPARATOR, 3);
  return tenant !== undefined && TENANT_PATTERN.test(tenant) && id.indexOf(TENANT_ID_SEPARATOR) > 0
    ? tenant
    : undefined;
}
