import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groundedness } from '../../lib/generation/groundedness.js';
import { OpenAIGenerator } from '../../lib/generation/openai-generator.js';
import { Analyzer } from '../../lib/retrieval/analyzer.js';
import { startFakeOpenAI, TWO_CHUNKS, type FakeOpenAI } from '../support/fake-openai.js';

let fake: FakeOpenAI;
beforeAll(async () => {
  fake = await startFakeOpenAI({ models: ['fake-model'] });
});
afterAll(async () => {
  await fake.close();
});

const analyzer = new Analyzer();
const sources = TWO_CHUNKS.map((c) => ({ n: c.n, text: `${c.title}\n${c.text}` }));

describe('groundedness of an OpenAI-compatible answer', () => {
  it('catches an invented sentence and a true sentence citing the wrong chunk in a real completion', async () => {
    const generator = new OpenAIGenerator({
      apiKey: 'sk-test',
      baseURL: fake.baseURL,
      model: 'fake-model',
      temperature: 0,
      maxTokens: 256,
      timeoutMs: 2000,
      contextTokens: 1000,
    });
    fake.script({
      kind: 'answer',
      content:
        'The warranty lasts two years [1]. Returns are accepted for 30 days [1]. Shipping is free on every order worldwide [2].',
    });
    const answer = await generator.generate({ query: 'How long is the warranty?', chunks: TWO_CHUNKS });
    const g = groundedness(analyzer, { answer: answer.answer, sources });
    expect(g.unsupported).toEqual([
      'Returns are accepted for 30 days [1].',
      'Shipping is free on every order worldwide [2].',
    ]);
    expect(g.score).toBeCloseTo(1 / 3, 3);
    expect(g.mostlyUnsupported).toBe(true);
  });
});
