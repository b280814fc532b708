/**
 * The one definition of a valid tenant name, used by the configuration schema, the clients, the workflows and the
 * activities alike. No runtime dependencies, so workflow code imports it.
 */

/** 1–63 letters, digits, '-' or '_', starting with a letter or digit: safe in keys, file names and workflow ids. */
export const TENANT_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/i;

/** Why a tenant name is invalid, or undefined when it is valid. */
export function tenantProblem(tenant: unknown): string | undefined {
  return typeof tenant === 'string' && TENANT_PATTERN.test(tenant)
    ? undefined
    : `tenant "${String(tenant)}" must be 1–63 letters, digits, '-' or '_'`;
}
