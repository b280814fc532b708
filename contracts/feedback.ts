/** Input and output of the feedback workflow, which joins a user's rating to a logged query. */
export interface RecordFeedbackInput {
  queryId: string;
  /** 1 (useless) to 5 (exactly right). */
  score: number;
  comment?: string;
  /** Only a query of this tenant may be rated; another tenant's is reported as unknown. */
  tenant?: string;
}

export interface RecordFeedbackResult {
  queryId: string;
  tenant: string;
}
