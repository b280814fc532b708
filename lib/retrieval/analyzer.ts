import { stemmer } from 'stemmer';

/**
 * Text analysis shared by indexing and querying, so both sides agree on what a term is:
 * Unicode-aware tokens, lowercase, Latin diacritics folded, possessive 's dropped, English stop words removed,
 * Porter-stemmed. Only pure a–z tokens are stemmed: Porter is an English stemmer and would mangle
 * identifiers such as `il6` or words in other scripts.
 */

/** Lucene's classic English stop set: small on purpose, see README.md for the measured alternatives. */
export const ENGLISH_STOP_WORDS: ReadonlySet<string> = new Set([
  'a', 'an', 'and', 'are', 'as', 'at', 'be', 'but', 'by', 'for', 'if', 'in', 'into', 'is', 'it', 'no', 'not',
  'of', 'on', 'or', 'such', 'that', 'the', 'their', 'then', 'there', 'these', 'they', 'this', 'to', 'was',
  'will', 'with',
]); // prettier-ignore

export interface AnalyzerOptions {
  stopWords?: ReadonlySet<string>;
  stem?: boolean;
}

// Letters or digits, optionally joined by inner apostrophes ("o'neill", "cell's").
const TOKEN = /[\p{L}\p{N}]+(?:'[\p{L}\p{N}]+)*/gu;
const NON_ASCII = /[^\x00-\x7f]/;
const LATIN_WITH_MARKS = /(\p{Script=Latin})\p{Mn}+/gu;
const ASCII_WORD = /^[a-z]+$/;
// Stemming dominates analysis time; vocabularies repeat heavily, so stems are memoised (bounded).
const STEM_CACHE_LIMIT = 500_000;

export class Analyzer {
  private readonly stopWords: ReadonlySet<string>;
  private readonly stem: boolean;
  private readonly stems = new Map<string, string>();

  constructor(options: AnalyzerOptions = {}) {
    this.stopWords = options.stopWords ?? ENGLISH_STOP_WORDS;
    this.stem = options.stem ?? true;
  }

  /** The terms of `text`, in order, repeats kept (term frequencies matter). */
  analyze(text: string): string[] {
    const terms: string[] = [];
    for (const match of normalize(text).matchAll(TOKEN)) {
      let token = match[0];
      if (token.includes("'")) {
        if (token.endsWith("'s")) token = token.slice(0, -2);
        token = token.replaceAll("'", '');
      }
      if (token.length === 0 || this.stopWords.has(token)) continue;
      terms.push(this.stemToken(token));
    }
    return terms;
  }

  private stemToken(token: string): string {
    if (!this.stem || !ASCII_WORD.test(token)) return token;
    let stemmed = this.stems.get(token);
    if (stemmed === undefined) {
      stemmed = stemmer(token);
      if (this.stems.size >= STEM_CACHE_LIMIT) this.stems.clear();
      this.stems.set(token, stemmed);
    }
    return stemmed;
  }
}

function normalize(text: string): string {
  const lower = text.toLowerCase();
  if (!NON_ASCII.test(lower)) return lower;
  // Fold accents on Latin letters only: combining marks are essential in scripts such as Devanagari.
  return lower
    .normalize('NFKD')
    .replace(LATIN_WITH_MARKS, '$1')
    .normalize('NFKC')
    .replace(/[\u2018\u2019\u02bc]/g, "'");
}
