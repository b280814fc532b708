import { describe, expect, it } from 'vitest';
import { Analyzer } from '../../lib/retrieval/analyzer.js';
import { DEFAULT_BM25 } from '../../lib/retrieval/embedded-store.js';
import { TenantIndex } from '../../lib/retrieval/lexical-index.js';
import { makeDoc } from '../support/store-contract.js';

describe('Analyzer', () => {
  const analyzer = new Analyzer();

  it('lowercases, drops stop words and possessives, and stems', () => {
    expect(analyzer.analyze("The Cell's membranes were RUNNING")).toEqual(['cell', 'membran', 'run']);
  });

  it('keeps hyphenated compounds both split and joined, unstemmed when alphanumeric', () => {
    expect(analyzer.analyze('IL-6 levels')).toEqual(['il6', 'il', '6', 'level']);
  });

  it('folds Latin accents and keeps other scripts intact', () => {
    expect(analyzer.analyze('Café naïve')).toEqual(['cafe', 'naiv']);
    expect(analyzer.analyze('हिन्दी 日本語')).toEqual(['हिन्दी', '日本語']);
  });

  it('finds nothing in punctuation or stop words only', () => {
    expect(analyzer.analyze('?! the of and -- ')).toEqual([]);
  });
});

/** Ranking regressions on a fixture corpus: each case is a property BM25F must keep. */
describe('TenantIndex ranking', () => {
  const build = (leaveOut: string[] = []) => {
    const index = new TenantIndex(new Analyzer(), DEFAULT_BM25);
    const docs = [
      makeDoc('title-hit', 'Insulin resistance', ['A study of metabolism in adults over ten years.']),
      makeDoc('body-hit', 'Metabolic study', ['Insulin resistance was measured in adults over ten years.']),
      makeDoc('long', 'Review', [`${'Unrelated filler words about cohorts and methods. '.repeat(40)} insulin.`]),
      makeDoc('short', 'Note', ['insulin dosing']),
      makeDoc('rare', 'Zebrafish', ['Zebrafish fins regenerate; metabolism slows.']),
      makeDoc('common', 'Adults', ['Adults adults adults over years, a study of adults.']),
    ];
    for (const doc of docs) if (!leaveOut.includes(doc.docId)) index.put(doc);
    return index;
  };
  const ids = (index: TenantIndex, query: string, k = 10) =>
    index.search(query, k).map(({ slot }) => index.chunk(slot)!.docId);

  it('ranks a title match above the same words in the body', () => {
    // Without the very long document, whose length would make every other body look short.
    expect(ids(build(['long']), 'insulin resistance').slice(0, 2)).toEqual(['title-hit', 'body-hit']);
  });

  it('prefers a short document over a long one with the same single occurrence', () => {
    const ranked = ids(build(), 'insulin');
    expect(ranked.indexOf('short')).toBeLessThan(ranked.indexOf('long'));
  });

  it('lets a rare term outweigh a common one', () => {
    expect(ids(build(), 'zebrafish adults')[0]).toBe('rare');
  });

  it('saturates repeated terms instead of counting them linearly', () => {
    const index = build();
    const [first, second] = index.search('adults metabolism', 2);
    // "common" repeats "adults" four times yet must not dwarf a document holding both terms once.
    expect(index.chunk(first!.slot)!.docId).not.toBe('common');
    expect(second).toBeDefined();
  });

  it('matches inflections through stemming', () => {
    expect(ids(build(), 'regenerating fin')[0]).toBe('rare');
  });

  it('forgets deleted documents and keeps results deterministic', () => {
    const index = build();
    index.remove('title-hit');
    expect(ids(index, 'insulin resistance')[0]).toBe('body-hit');
    expect(ids(index, 'insulin')).toEqual(ids(index, 'insulin'));
    expect(ids(index, 'insulin', 1)).toHaveLength(1);
  });

  it('returns nothing for unknown terms', () => {
    expect(ids(build(), 'quasar')).toEqual([]);
  });

  it('ranks the chunk of a document about the subject above a passing mention, by document-level evidence', () => {
    // "aside" names both terms once in a short section; "guide" is about webhooks in every chunk but one
    // chunk is what a question about retries should return.
    const docs = [
      makeDoc('aside', 'Sandbox', [
        'Sandbox basics for testing.',
        'Sandbox data is wiped every month.',
        'Webhooks retries are unchanged in the sandbox.',
      ]),
      makeDoc('guide', 'Webhooks', [
        'Webhooks notify your endpoint when an event happens.',
        'Each webhook delivery is signed; verify webhooks before trusting them.',
        'A failed webhook delivery is attempted again with exponential backoff over many hours, so retries last about one day in total.',
      ]),
      makeDoc('billing', 'Billing', ['Invoices are sent monthly.']),
      makeDoc('exports', 'Exports', ['Export your data as CSV.']),
    ];
    const top = (documentWeight: number) => {
      const index = new TenantIndex(new Analyzer(), { ...DEFAULT_BM25, documentWeight });
      for (const doc of docs) index.put(doc);
      const hits = index.search('webhook retries', 3);
      return hits.map(({ slot }) => index.chunk(slot)!.id);
    };
    expect(top(0)[0]).toBe('aside#2');
    expect(top(DEFAULT_BM25.documentWeight)[0]).toBe('guide#2');
  });

  it('leaves the order unchanged with one chunk per document', () => {
    const order = (documentWeight: number) => {
      const index = new TenantIndex(new Analyzer(), { ...DEFAULT_BM25, documentWeight });
      for (const doc of [
        makeDoc('a', 'Insulin', ['insulin resistance in adults']),
        makeDoc('b', 'Study', ['insulin dosing']),
        makeDoc('c', 'Resistance', ['resistance training']),
      ])
        index.put(doc);
      return index.search('insulin resistance', 3).map(({ slot }) => index.chunk(slot)!.docId);
    };
    expect(order(1)).toEqual(order(0));
  });

  it('expands queries with RM3 when asked, still ranking the obvious match first', () => {
    const index = build();
    const hits = index.search('zebrafish', 5, { docs: 2, terms: 5, originalWeight: 0.5 });
    expect(index.chunk(hits[0]!.slot)!.docId).toBe('rare');
  });
});
