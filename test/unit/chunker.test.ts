import { describe, expect, it } from 'vitest';
import { chunkDocument, contentHash } from '../../lib/ingest/chunker.js';

const doc = (text: string) => ({ id: 'guide', title: 'Guide', text });

describe('chunkDocument', () => {
  it('keeps a short document in one chunk with a stable id', () => {
    const { chunks } = chunkDocument(doc('# Guide\n\nOne short paragraph.'), 800);
    expect(chunks).toHaveLength(1);
    expect(chunks[0]).toMatchObject({ id: 'guide#0', docId: 'guide', position: 0 });
    expect(chunks[0]?.text).toContain('One short paragraph.');
  });

  it('splits on paragraphs and starts a section chunk with its heading', () => {
    const para = (n: number) => `Paragraph ${n} ` + 'word '.repeat(60);
    const text = `# Guide\n\n${para(1)}\n\n## Billing\n\n${para(2)}\n\n${para(3)}\n\n${para(4)}`;
    const { chunks } = chunkDocument(doc(text), 700);
    expect(chunks.length).toBeGreaterThan(1);
    for (const chunk of chunks) expect(chunk.text.length).toBeLessThanOrEqual(760);
    const billing = chunks.filter((c) => c.text.includes('Paragraph 2') || c.text.includes('Paragraph 3'));
    expect(billing[0]?.text).toMatch(/^## Billing/);
    expect(chunks.map((c) => c.position)).toEqual(chunks.map((_, i) => i));
  });

  it('cuts a paragraph longer than the limit at sentence boundaries', () => {
    const sentences = Array.from({ length: 40 }, (_, i) => `Sentence number ${i} is here.`).join(' ');
    const { chunks } = chunkDocument(doc(sentences), 200);
    expect(chunks.length).toBeGreaterThan(4);
    for (const chunk of chunks) expect(chunk.text.trim()).toMatch(/\.$/);
    expect(chunks.map((c) => c.text).join(' ')).toContain('Sentence number 39 is here.');
  });

  it('hashes content so that only a real change moves the hash', () => {
    expect(contentHash(doc('a'), 800)).toBe(contentHash(doc('a'), 800));
    expect(contentHash(doc('a'), 800)).not.toBe(contentHash(doc('b'), 800));
    expect(contentHash(doc('a'), 800)).not.toBe(contentHash(doc('a'), 400));
  });
});
