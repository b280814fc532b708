import { describe, expect, it } from 'vitest';
import { standaloneQuestion } from '../../lib/conversation/standalone-question.js';

describe('standaloneQuestion (model-free follow-up rewriting)', () => {
  it('adds the topic of the earlier question to a follow-up that points back at it', () => {
    const { question, rewritten } = standaloneQuestion([
      'How do I reset my password?',
      'And how long is that link valid?',
    ]);
    expect(rewritten).toBe(true);
    expect(question).toBe('And how long is that link valid? (reset password)');
  });

  it('takes a short question as a follow-up, and skips earlier questions with no topic of their own', () => {
    expect(standaloneQuestion(['How do I rotate an API key?', 'Why?', 'Do I get a refund?'])).toEqual({
      question: 'Do I get a refund? (rotate api key)',
      rewritten: true,
    });
  });

  it('leaves a question that stands on its own, and a first question, as they are', () => {
    const own = 'Which formats can I export dashboards in for scheduled reports?';
    expect(standaloneQuestion(['How do I reset my password?', own])).toEqual({ question: own, rewritten: false });
    expect(standaloneQuestion(['And how long is that link valid?'])).toEqual({
      question: 'And how long is that link valid?',
      rewritten: false,
    });
  });

  it('adds only words the follow-up does not already have', () => {
    expect(standaloneQuestion(['How do I set up webhooks?', 'Are webhooks retried?']).question).toBe(
      'Are webhooks retried? (set up)',
    );
  });
});
