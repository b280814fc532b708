/**
 * Sentences of a passage, for scoring a chunk's dense leg by its best-matching sentence (MaxP): a question that
 * matches one sentence of a long abstract is diluted in the abstract's single vector.
 *
 * A deliberately simple splitter: a line break ends a sentence (Markdown headings and list items), and so does
 * `.`, `!` or `?` followed by white space and a capital letter, digit or opening bracket, unless the word before the
 * stop is a common abbreviation ("et al.", "e.g.", "Fig.", "vs."). A piece shorter than `MIN_WORDS` words joins the
 * next one (section labels, "n = 17)." fragments), so no vector is spent on a text that means nothing alone.
 */

const MIN_WORDS = 4;

const ABBREVIATIONS = new Set([
  'al',
  'e.g',
  'i.e',
  'eg',
  'ie',
  'etc',
  'fig',
  'figs',
  'vs',
  'v',
  'cf',
  'approx',
  'ca',
  'no',
  'nos',
  'dr',
  'mr',
  'mrs',
  'ms',
  'prof',
  'st',
  'sp',
  'spp',
  'resp',
  'ref',
  'refs',
  'eq',
  'vol',
  'inc',
  'ltd',
  'co',
]);

const BOUNDARY = /[.!?]["'”’)\]]*\s+(?=["'“‘([]?[\p{Lu}\d])/gu;

/** `text` cut into sentences, in order, trimmed; a text without a boundary is one sentence. */
export function splitSentences(text: string): string[] {
  const pieces = text.split(/\n+/).flatMap(splitLine);
  const sentences: string[] = [];
  let pending = '';
  for (const piece of pieces) {
    if (piece === '') continue;
    const joined = pending === '' ? piece : `${pending} ${piece}`;
    if (words(joined) < MIN_WORDS) pending = joined;
    else {
      sentences.push(joined);
      pending = '';
    }
  }
  if (pending !== '') {
    if (sentences.length === 0) sentences.push(pending);
    else sentences[sentences.length - 1] = `${sentences[sentences.length - 1]} ${pending}`;
  }
  return sentences;
}

function splitLine(line: string): string[] {
  const pieces: string[] = [];
  let start = 0;
  for (const match of line.matchAll(BOUNDARY)) {
    const end = match.index + match[0].length;
    const lastWord = /(\S+)\.$/
      .exec(line.slice(start, match.index + 1))?.[1]
      ?.toLowerCase()
      .replace(/^[("'“‘[]+/, '');
    if (lastWord !== undefined && ABBREVIATIONS.has(lastWord)) continue;
    pieces.push(line.slice(start, end).trim());
    start = end;
  }
  pieces.push(line.slice(start).trim());
  return pieces;
}

function words(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}
