import { createHash } from 'node:crypto';
import type { Chunk, DocumentChunks, SourceDocument } from '../domain.js';

/** Bump when chunking changes, so every document is re-chunked on its next ingestion. */
export const CHUNKER_VERSION = 1;

/**
 * Splits a document into chunks of about `maxChars`, on paragraph boundaries where possible, then sentences.
 * Each chunk of a Markdown document starts with its section heading, so a chunk read alone keeps its context.
 */
export function chunkDocument(doc: SourceDocument, maxChars: number): DocumentChunks {
  const pieces: string[] = [];
  let heading = '';
  let current = '';
  const flush = () => {
    if (current.trim()) pieces.push(current.trim());
    current = '';
  };
  for (const block of doc.text.split(/\n\s*\n/)) {
    const paragraph = block.trim();
    if (!paragraph) continue;
    const headingMatch = /^#{1,6}\s+(.+)$/.exec(paragraph);
    if (headingMatch && !paragraph.includes('\n')) {
      flush();
      heading = headingMatch[1] ?? '';
      current = `${paragraph}\n\n`;
      continue;
    }
    for (const part of splitLong(paragraph, maxChars)) {
      if (current.length + part.length > maxChars && current.trim() && current.trim() !== `## ${heading}`.trim()) {
        flush();
        if (heading) current = `${heading}: `;
      }
      current += `${part}\n\n`;
    }
  }
  flush();
  const chunks: Chunk[] = pieces.map((text, position) => ({
    id: `${doc.id}#${position}`,
    docId: doc.id,
    title: doc.title,
    text,
    position,
  }));
  return { docId: doc.id, title: doc.title, contentHash: contentHash(doc, maxChars), chunks };
}

function splitLong(paragraph: string, maxChars: number): string[] {
  if (paragraph.length <= maxChars) return [paragraph];
  const parts: string[] = [];
  let current = '';
  for (const sentence of paragraph.split(/(?<=[.!?])\s+/)) {
    if (current && current.length + sentence.length + 1 > maxChars) {
      parts.push(current);
      current = '';
    }
    // A single sentence longer than the limit is cut at word boundaries.
    let rest = sentence;
    while (rest.length > maxChars) {
      const cut = rest.lastIndexOf(' ', maxChars) > maxChars / 2 ? rest.lastIndexOf(' ', maxChars) : maxChars;
      parts.push(rest.slice(0, cut));
      rest = rest.slice(cut).trimStart();
    }
    current = current ? `${current} ${rest}` : rest;
  }
  if (current) parts.push(current);
  return parts;
}

/** Same title, text and chunking → same hash: re-ingesting an unchanged document changes nothing. */
export function contentHash(doc: SourceDocument, maxChars: number): string {
  return createHash('sha256')
    .update(`${CHUNKER_VERSION}\u0000${maxChars}\u0000${doc.title}\u0000${doc.text}`)
    .digest('hex');
}
