import { describe, expect, it } from 'vitest';
import { documentFieldsProblem, MAX_DOCUMENT_ID_BYTES, MAX_TITLE_BYTES } from '../../lib/ingest-limits.js';

describe('document field limits', () => {
  it('accepts an id and a title at their limits, counted in UTF-8 bytes', () => {
    expect(documentFieldsProblem({ id: 'a'.repeat(MAX_DOCUMENT_ID_BYTES), title: 't'.repeat(MAX_TITLE_BYTES) })).toBe(
      undefined,
    );
    // 'é' is two bytes: half the limit in characters is the whole limit in bytes.
    expect(documentFieldsProblem({ id: 'doc', title: 'é'.repeat(MAX_TITLE_BYTES / 2) })).toBeUndefined();
    expect(documentFieldsProblem({ id: 'doc', title: 'é'.repeat(MAX_TITLE_BYTES / 2 + 1) })).toMatch(
      /title is 1026 bytes; the maximum is 1024/,
    );
  });

  it('refuses a megabyte id or title without copying it into the message', () => {
    const hugeId = 'x'.repeat(1024 * 1024);
    const idProblem = documentFieldsProblem({ id: hugeId, title: '' });
    expect(idProblem).toMatch(/document id x{60}… \(1048576 characters\) is 1048576 bytes; the maximum is 512/);
    expect(idProblem!.length).toBeLessThan(200);
    const titleProblem = documentFieldsProblem({ id: 'paper-7', title: 'T'.repeat(1024 * 1024) });
    expect(titleProblem).toBe('document paper-7: title is 1048576 bytes; the maximum is 1024');
  });
});
