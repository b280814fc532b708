/** What a test sends to the HTTP API: a bearer token, and a JSON body or a raw one with its content type. */
export interface ApiRequestOptions {
  token?: string;
  body?: unknown;
  raw?: string;
  type?: string;
}

/** One request to the API at `base`, as an app in any language would make it. */
export function apiRequest(base: string, method: string, route: string, options: ApiRequestOptions = {}) {
  return fetch(`${base}${route}`, {
    method,
    headers: {
      ...(options.body !== undefined || options.raw !== undefined
        ? { 'content-type': options.type ?? 'application/json' }
        : {}),
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
    },
    body: options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
  });
}
