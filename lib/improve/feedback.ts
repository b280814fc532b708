/** Validation of user feedback, shared by the CLI, the HTTP route, the client and the activity. No dependencies. */

export const MAX_COMMENT_CHARS = 2000;

/** Why feedback cannot be recorded as given, or undefined. */
export function feedbackProblem(input: { queryId?: unknown; score?: unknown; comment?: unknown }): string | undefined {
  if (typeof input.queryId !== 'string' || input.queryId.trim() === '') return 'queryId is required';
  if (typeof input.score !== 'number' || !Number.isInteger(input.score) || input.score < 1 || input.score > 5)
    return 'score must be an integer from 1 (useless) to 5 (exactly right)';
  if (input.comment !== undefined && (typeof input.comment !== 'string' || input.comment.length > MAX_COMMENT_CHARS))
    return `comment must be text of at most ${MAX_COMMENT_CHARS} characters`;
  return undefined;
}
