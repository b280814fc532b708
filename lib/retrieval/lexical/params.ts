/** The lexical index's ranking parameters: BM25F per field with document-level evidence, and RM3 feedback. */

export interface Bm25Params {
  /** Term-frequency saturation. */
  k1: number;
  /** Length normalisation of the body field. */
  b: number;
  /** Length normalisation of the title field. */
  titleB: number;
  /** How much one title occurrence counts against one body occurrence (BM25F field weight). */
  titleWeight: number;
  /**
   * Weight of document-level evidence: a chunk scores its own BM25F plus this times the mean BM25F of its
   * document's chunks (Callan, "Passage-level evidence in document retrieval", SIGIR 1994). A short section that
   * mentions every query term in passing otherwise beats the document that is about the subject throughout.
   * The mean, not the sum, so a long document does not win by its number of chunks. 0 turns it off; with one
   * chunk per document it only rescales scores, so rankings are unchanged.
   */
  documentWeight: number;
}

export interface FeedbackParams {
  /** Top chunks of the first pass used as pseudo-relevant; 0 disables RM3. */
  docs: number;
  /** Expansion terms kept. */
  terms: number;
  /** Weight of the original query against the expansion model. */
  originalWeight: number;
}
