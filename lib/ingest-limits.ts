/** Limits of ingestion shared by the configuration, the client and the workflow. No runtime dependencies. */

/** Largest batch (documents per activity): a larger one risks the activity's timeout and payload limits. */
export const MAX_INGEST_BATCH = 10_000;

/** Why a batch size is invalid, or undefined when it is valid. */
export function batchSizeProblem(batchSize: unknown): string | undefined {
  return typeof batchSize === 'number' && Number.isInteger(batchSize) && batchSize >= 1 && batchSize <= MAX_INGEST_BATCH
    ? undefined
    : `batchSize must be an integer from 1 to ${MAX_INGEST_BATCH}, not ${String(batchSize)}`;
}

/**
 * Longest document id, in UTF-8 bytes. An id names every chunk (`<id>#<n>`), every cache tag and every citation, and
 * travels in workflow payloads: a megabyte id would fail the batch that carries it.
 */
export const MAX_DOCUMENT_ID_BYTES = 512;

/** Longest document title, in UTF-8 bytes. A title is copied into every chunk, retrieval result and answer. */
export const MAX_TITLE_BYTES = 1024;

const utf8 = new TextEncoder();

/** An id shortened for a message, so that refusing a huge id does not put it into the report. */
function shown(id: string): string {
  return id.length <= 60 ? id : `${id.slice(0, 60)}… (${id.length} characters)`;
}

/**
 * Why a parsed document's id or title is too long to store, or undefined when both fit. Checked before chunking,
 * so one oversized document is rejected and the rest of its batch goes in.
 */
export function documentFieldsProblem(doc: { id: string; title: string }): string | undefined {
  const idBytes = utf8.encode(doc.id).length;
  if (idBytes > MAX_DOCUMENT_ID_BYTES)
    return `document id ${shown(doc.id)} is ${idBytes} bytes; the maximum is ${MAX_DOCUMENT_ID_BYTES}`;
  const titleBytes = utf8.encode(doc.title).length;
  if (titleBytes > MAX_TITLE_BYTES)
    return `document ${shown(doc.id)}: title is ${titleBytes} bytes; the maximum is ${MAX_TITLE_BYTES}`;
  return undefined;
}
