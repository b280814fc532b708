import { describe, expect, it } from 'vitest';
import { EVAL_PROPOSAL_BYTES, proposalProblem, proposedItemProblem } from '../../contracts/evaluation.js';

const item = (question: string) => ({ id: 'q1', question, relevant: { 'billing-invoices': 1 } });

describe('byte bounds of proposed evaluation questions', () => {
  it('counts the larger of the raw and the NFKC form: composing accents shrinks a string NFKC alone would pass', () => {
    // "e" + combining acute: 3 bytes as sent, 2 once NFKC composes it into "é".
    const decomposed = 'e\u0301'.repeat(1400);
    expect(new TextEncoder().encode(decomposed.normalize('NFKC')).length).toBeLessThan(EVAL_PROPOSAL_BYTES.question);
    expect(proposedItemProblem(item(decomposed))).toMatch(/question q1 is 4200 bytes .*; at most 4096/);
  });

  it('counts the NFKC form when it is the larger: a ligature becomes 18 letters', () => {
    expect(proposedItemProblem(item('\uFDFA'.repeat(300)))).toMatch(/question q1 is \d+ bytes .*; at most 4096/);
  });

  it('accepts a question within both bounds, and refuses the proposal holding one that is not', () => {
    expect(proposedItemProblem(item('Can I export my invoices as CSV?'))).toBeUndefined();
    const proposal = { source: 'app', items: [item('Can I export?'), { ...item('e\u0301'.repeat(1400)), id: 'q2' }] };
    expect(proposalProblem(proposal)).toMatch(/question q2 is 4200 bytes/);
  });
});
