import OpenAI from 'openai';

/**
 * An `openai` client for any OpenAI-compatible endpoint, configured only from our parsed settings. Shared by the
 * chat generator and the embedder so both talk to an endpoint the same way.
 */
export function createOpenAIClient(options: { apiKey?: string; baseURL: string; timeoutMs: number }): OpenAI {
  return new OpenAI({
    // The SDK insists on a key; with none configured we send a placeholder and strip the header below.
    apiKey: options.apiKey ?? 'unset',
    baseURL: options.baseURL,
    // Temporal's retry policy is the only retry loop: SDK retries would hide attempts from it and blow the deadline.
    maxRetries: 0,
    timeout: options.timeoutMs,
    // Everything comes from the parsed config, never from the SDK reading the environment behind our back.
    organization: null,
    project: null,
    adminAPIKey: null,
    ...(options.apiKey === undefined ? { defaultHeaders: { Authorization: null } } : {}),
  });
}
