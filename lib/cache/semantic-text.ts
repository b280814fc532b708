import { stemmer } from 'stemmer';

/**
 * Question analysis for the semantic cache: a lexical similarity for the embedded default, and the guard that
 * refuses near-duplicates whose meaning differs. Written for questions, not documents, so it keeps what the
 * retrieval analyser drops on purpose: negations, numbers with their dots, capitalisation and word order.
 */

export const REFUSAL_REASONS = ['negation', 'antonym', 'swap', 'number', 'version', 'entity', 'question'] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

type TokenKind = 'content' | 'stop' | 'relation' | 'negation' | 'number' | 'version';

interface Token {
  /** Lowercase surface form after synonym folding. */
  lower: string;
  /** Stem for content words, the canonical value for numbers and versions, else `lower`. */
  term: string;
  kind: TokenKind;
  entity: boolean;
}

export interface QuestionAnalysis {
  tokens: Token[];
  /** Sparse weighted features, L2-normalised: stems, numbers, character trigrams, function words. */
  vector: Map<string, number>;
}

// Spellings of one thing, folded before tokenising so that "2FA" and "two-factor authentication" match.
const PHRASES: [RegExp, string][] = [
  [/\b(?:two|2|multi)[- ]?factor(?: authentication| auth)?\b|\b(?:2fa|mfa)\b/giu, '2fa'],
  [/\bsingle[- ]sign[- ]on\b|\bsso\b/giu, 'sso'],
  [/\b(?:log|sign)[- ]?(?:in|on)\b/giu, 'login'],
  [/\b(?:log|sign)[- ]?out\b/giu, 'logout'],
  [/\bset[- ]up\b/giu, 'setup'],
  [/\be-mail\b/giu, 'email'],
  [/\bcan ?not\b/giu, 'can not'],
  [/\bwon't\b/giu, 'will not'],
  [/\b(\p{L}+)n't\b/giu, '$1 not'],
  [/\b(what|where|who|how|it|that|there)'s\b/giu, '$1 is'],
  [/'(?:re|ve|ll|d|m)\b/giu, ''],
];

const STOP = new Set(
  (
    'a an the how do does did done i me my mine we us our you your is are was were be been being am can could ' +
    'should would will shall may might must it its this that these those what which when where who whom whose why ' +
    'there here any some of for in on at by and or if so as about also just still please way get got possible ' +
    'need want there anything something to from with all'
  ).split(' '),
);
// Kept in the ordered sequence the swap check reads: "from Pro to Business" differs from "from Business to Pro".
const RELATION = new Set(['to', 'from', 'into', 'than', 'vs', 'versus', 'over', 'under', 'between', 'via', 'per']);
const NEGATION = new Set(['not', 'no', 'never', 'none', 'nothing', 'neither', 'nor', 'nobody']);
const QUESTION_WORDS: Record<string, string> = { what: 'what', which: 'what', why: 'why', when: 'when', where: 'where', who: 'who' }; // prettier-ignore
const NUMBER_WORDS: Record<string, string> = {
  zero: '0', one: '1', two: '2', three: '3', four: '4', five: '5', six: '6', seven: '7', eight: '8', nine: '9',
  ten: '10', eleven: '11', twelve: '12', twenty: '20', thirty: '30', fifty: '50', hundred: '100', thousand: '1000',
}; // prettier-ignore

/** Names users often write in lowercase: plans, platforms, regions. Capitalised words count as names anyway. */
const KNOWN_NAMES = new Set(
  (
    'free starter basic pro professional team teams business enterprise premium plus growth scale ' +
    'ios android windows macos mac linux chrome firefox safari eu us uk apac'
  ).split(' '),
);

const ANTONYM_PAIRS: [string, string][] = (
  'enable/disable allow/deny allow/block add/remove increase/decrease upgrade/downgrade with/without ' +
  'before/after import/export encrypt/decrypt upload/download lock/unlock subscribe/unsubscribe start/stop ' +
  'open/close public/private include/exclude accept/reject grant/revoke activate/deactivate first/last more/less ' +
  'higher/lower high/low maximum/minimum max/min inbound/outbound monthly/annual monthly/yearly free/paid ' +
  'read/write send/receive create/delete login/logout success/failure succeed/fail on/off show/hide pause/resume ' +
  'internal/external always/never old/new online/offline sync/async approve/reject join/leave restore/delete ' +
  'archive/unarchive verify/unverify primary/secondary admin/member owner/member'
)
  .split(' ')
  .map((pair) => pair.split('/') as [string, string]);

const stemWord = (word: string): string => (/^[a-z]+$/.test(word) ? stemmer(word) : word);
const ANTONYMS: [string, string][] = ANTONYM_PAIRS.map(([a, b]) => [stemWord(a), stemWord(b)]);
const PREFIX_NEGATIONS = ['un', 'dis', 'de', 'non', 'in'];

const TOKEN = /[\p{L}\p{N}]+(?:[.'][\p{L}\p{N}]+)*/gu;
const VERSION = /^v\d+(?:\.\d+)*$|^\d+(?:\.\d+)+$/;
const INTEGER = /^\d+$/;

export function analyzeQuestion(question: string): QuestionAnalysis {
  let text = question.normalize('NFKC').replace(/[\u2018\u2019\u02bc`]/g, "'");
  for (const [pattern, replacement] of PHRASES) text = text.replace(pattern, replacement);
  const tokens: Token[] = [];
  let sentenceStart = true;
  for (const match of text.matchAll(TOKEN)) {
    const raw = match[0];
    const before = text.slice(0, match.index);
    if (/[.?!:;]\s*$/.test(before)) sentenceStart = true;
    const lower = raw.toLowerCase().replace(/'s$/, '').replaceAll("'", '');
    const capitalised = /\p{Lu}/u.test(raw) && raw !== 'I';
    // A capital at the start of a sentence says nothing, unless the word is an acronym or mixed case ("SAML", "GitHub").
    const named = capitalised && (!sentenceStart || /\p{Lu}.*\p{Lu}|\p{N}/u.test(raw));
    sentenceStart = false;
    let kind: TokenKind;
    let term = lower;
    if (VERSION.test(lower)) {
      kind = 'version';
      term = lower.replace(/^v/, '').replace(/(?:\.0)+$/, '');
    } else if (INTEGER.test(lower) || lower in NUMBER_WORDS) {
      kind = 'number';
      term = String(Number(NUMBER_WORDS[lower] ?? lower));
    } else if (NEGATION.has(lower)) kind = 'negation';
    else if (RELATION.has(lower)) kind = 'relation';
    else if (STOP.has(lower) && !named) kind = 'stop';
    else {
      kind = 'content';
      term = stemWord(lower);
    }
    tokens.push({ lower, term, kind, entity: kind === 'content' && (named || KNOWN_NAMES.has(lower)) });
  }
  return { tokens, vector: vectorize(tokens) };
}

function vectorize(tokens: Token[]): Map<string, number> {
  const vector = new Map<string, number>();
  const add = (feature: string, weight: number) => vector.set(feature, (vector.get(feature) ?? 0) + weight);
  for (const token of tokens) {
    if (token.kind === 'content' || token.kind === 'number' || token.kind === 'version') {
      add(`t:${token.term}`, 1);
      // Trigrams of the surface form absorb what stemming misses: "webhook"/"web-hooks", typos, plurals of acronyms.
      const padded = `#${token.lower}#`;
      for (let i = 0; i + 3 <= padded.length; i++) add(`g:${padded.slice(i, i + 3)}`, 0.2);
    } else {
      add(`s:${token.lower}`, 0.15);
    }
  }
  let norm = 0;
  for (const weight of vector.values()) norm += weight * weight;
  norm = Math.sqrt(norm);
  if (norm > 0) for (const [feature, weight] of vector) vector.set(feature, weight / norm);
  return vector;
}

export function lexicalSimilarity(a: QuestionAnalysis, b: QuestionAnalysis): number {
  const [small, large] = a.vector.size <= b.vector.size ? [a.vector, b.vector] : [b.vector, a.vector];
  let dot = 0;
  for (const [feature, weight] of small) dot += weight * (large.get(feature) ?? 0);
  return dot;
}

export function cosineSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

const termsOf = (analysis: QuestionAnalysis, kinds: TokenKind[]): string[] =>
  analysis.tokens.filter((t) => kinds.includes(t.kind)).map((t) => t.term);

/** Numbers, including those glued to a unit ("10gb", "30d"), so "10gb" and "100gb" differ. */
const numbersOf = (analysis: QuestionAnalysis): string[] =>
  analysis.tokens.flatMap((t) =>
    t.kind === 'number'
      ? [t.term]
      : t.kind === 'content'
        ? [...t.lower.matchAll(/\d+(?:\.\d+)?/g)].map((m) => String(Number(m[0])))
        : [],
  );

const sameMultiset = (a: string[], b: string[]): boolean => a.length === b.length && [...a].sort().join('\u0000') === [...b].sort().join('\u0000'); // prettier-ignore

/**
 * Why two similar questions must not share an answer, or undefined when nothing tells them apart. Checks are
 * cheap and ordered from the most to the least specific reason.
 */
export function guardRefusal(a: QuestionAnalysis, b: QuestionAnalysis): RefusalReason | undefined {
  if (termsOf(a, ['negation']).length % 2 !== termsOf(b, ['negation']).length % 2) return 'negation';
  const termsA = new Set(a.tokens.map((t) => t.term));
  const termsB = new Set(b.tokens.map((t) => t.term));
  const onlyA = [...termsA].filter((t) => !termsB.has(t));
  const onlyB = [...termsB].filter((t) => !termsA.has(t));
  for (const [x, y] of ANTONYMS) {
    if ((onlyA.includes(x) && onlyB.includes(y)) || (onlyA.includes(y) && onlyB.includes(x))) return 'antonym';
  }
  for (const x of onlyA) {
    for (const y of onlyB) {
      if (PREFIX_NEGATIONS.some((p) => x === p + y || y === p + x)) return 'antonym';
    }
  }
  if (!sameMultiset(termsOf(a, ['version']), termsOf(b, ['version']))) return 'version';
  if (!sameMultiset(numbersOf(a), numbersOf(b))) return 'number';
  const lowerA = new Set(a.tokens.flatMap((t) => [t.lower, t.term]));
  const lowerB = new Set(b.tokens.flatMap((t) => [t.lower, t.term]));
  const unmatchedEntity = (x: QuestionAnalysis, other: Set<string>) =>
    x.tokens.some((t) => t.entity && !other.has(t.lower) && !other.has(t.term));
  if (unmatchedEntity(a, lowerB) || unmatchedEntity(b, lowerA)) return 'entity';
  if (swapped(a, b)) return 'swap';
  // Only the first question word asks: in "what happens when I..." the "when" is a conjunction.
  const questionA = a.tokens.map((t) => QUESTION_WORDS[t.lower]).find(Boolean);
  const questionB = b.tokens.map((t) => QUESTION_WORDS[t.lower]).find(Boolean);
  if (questionA && questionB && questionA !== questionB) return 'question';
  return undefined;
}

/**
 * "X requires Y" against "Y requires X": two shared words appear in opposite orders with a third shared word
 * between them in both. A plain reordering ("API rate limit" / "rate limit of the API") has no such pivot.
 */
function swapped(a: QuestionAnalysis, b: QuestionAnalysis): boolean {
  const ordered: TokenKind[] = ['content', 'relation', 'number', 'version'];
  const positions = (x: QuestionAnalysis) => {
    const map = new Map<string, number>();
    x.tokens.filter((t) => ordered.includes(t.kind)).forEach((t, i) => map.has(t.term) || map.set(t.term, i));
    return map;
  };
  const pa = positions(a);
  const pb = positions(b);
  const shared = [...pa.keys()].filter((t) => pb.has(t));
  const operands = shared.filter((t) => !RELATION.has(t));
  for (const x of operands) {
    for (const y of operands) {
      const [ax, ay, bx, by] = [pa.get(x)!, pa.get(y)!, pb.get(x)!, pb.get(y)!];
      if (!(ax < ay && bx > by)) continue;
      if (
        shared.some(
          (c) => c !== x && c !== y && pa.get(c)! > ax && pa.get(c)! < ay && pb.get(c)! > by && pb.get(c)! < bx,
        )
      ) {
        return true;
      }
    }
  }
  return false;
}

export interface QuestionComparison {
  similarity: number;
  refusal?: RefusalReason;
}

/** Lexical similarity of two questions and the guard's verdict; for the cache, tests and threshold tuning. */
export function compareQuestions(a: string, b: string): QuestionComparison {
  const [x, y] = [analyzeQuestion(a), analyzeQuestion(b)];
  const refusal = guardRefusal(x, y);
  return refusal ? { similarity: lexicalSimilarity(x, y), refusal } : { similarity: lexicalSimilarity(x, y) };
}
