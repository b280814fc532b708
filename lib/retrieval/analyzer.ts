import { stemmer } from 'stemmer';

/**
 * Text analysis shared by indexing and querying, so both sides agree on what a term is:
 * Unicode-aware tokens, lowercase, Latin diacritics folded, possessive 's dropped, hyphenated compounds also
 * joined, English stop words removed, Porter-stemmed. Only pure a–z tokens are stemmed: Porter is an English
 * stemmer and would mangle identifiers such as `il6` or words in other scripts.
 */

/**
 * The common English function-word list (the one NLTK ships). It measured slightly better on SciFact than
 * Lucene's 33-word set and than no stop list (README.md), and it makes postings of the commonest words vanish.
 */
export const ENGLISH_STOP_WORDS: ReadonlySet<string> = new Set([
  'a', 'about', 'above', 'after', 'again', 'against', 'all', 'am', 'an', 'and', 'any', 'are', 'as', 'at', 'be',
  'because', 'been', 'before', 'being', 'below', 'between', 'both', 'but', 'by', 'can', 'could', 'did', 'do', 'does',
  'doing', 'down', 'during', 'each', 'few', 'for', 'from', 'further', 'had', 'has', 'have', 'having', 'he', 'her',
  'here', 'hers', 'herself', 'him', 'himself', 'his', 'how', 'i', 'if', 'in', 'into', 'is', 'it', 'its', 'itself',
  'just', 'me', 'more', 'most', 'my', 'myself', 'no', 'nor', 'not', 'now', 'of', 'off', 'on', 'once', 'only', 'or',
  'other', 'our', 'ours', 'ourselves', 'out', 'over', 'own', 'same', 'she', 'should', 'so', 'some', 'such', 'than',
  'that', 'the', 'their', 'theirs', 'them', 'themselves', 'then', 'there', 'these', 'they', 'this', 'those',
  'through', 'to', 'too', 'under', 'until', 'up', 'very', 'was', 'we', 'were', 'what', 'when', 'where', 'which',
  'while', 'who', 'whom', 'why', 'will', 'with', 'would', 'you', 'your', 'yours', 'yourself', 'yourselves',
]); // prettier-ignore

export interface AnalyzerOptions {
  stopWords?: ReadonlySet<string>;
  stem?: boolean;
  /**
   * Also emit hyphenated compounds joined ("il-6" → il, 6, il6), so queries match whichever spelling a text
   * uses ("il6", "IL-6"). Measured +0.005 nDCG@10 on SciFact. @default true
   */
  compounds?: boolean;
}

// Letters or digits (with their combining marks, which Indic scripts need), optionally joined by inner
// apostrophes ("o'neill", "cell's").
const TOKEN = /[\p{L}\p{N}][\p{L}\p{M}\p{N}]*(?:'[\p{L}\p{M}\p{N}]+)*/gu;
const COMPOUND = /[\p{L}\p{N}][\p{L}\p{M}\p{N}]*(?:-[\p{L}\p{M}\p{N}]+)+/gu;
const NON_ASCII = /[^\p{ASCII}]/u;
const LATIN_WITH_MARKS = /(\p{Script=Latin})\p{Mn}+/gu;
const ASCII_WORD = /^[a-z]+$/;
// Stemming dominates analysis time; vocabularies repeat heavily, so stems are memoised (bounded).
const STEM_CACHE_LIMIT = 500_000;

export class Analyzer {
  private readonly stopWords: ReadonlySet<string>;
  private readonly stem: boolean;
  private readonly stems = new Map<string, string>();
  private readonly compounds: boolean;

  constructor(options: AnalyzerOptions = {}) {
    this.stopWords = options.stopWords ?? ENGLISH_STOP_WORDS;
    this.stem = options.stem ?? true;
    this.compounds = options.compounds ?? true;
  }

  /** The terms of `text`, in order, repeats kept (term frequencies matter). */
  analyze(text: string): string[] {
    const terms: string[] = [];
    const normalized = normalize(text);
    if (this.compounds && normalized.includes('-')) {
      for (const match of normalized.matchAll(COMPOUND)) {
        const joined = match[0].replaceAll('-', '');
        if (!this.stopWords.has(joined)) terms.push(this.stemToken(joined));
      }
    }
    for (const match of normalized.matchAll(TOKEN)) {
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
    if (!this.stem) return token;
    let stemmed = this.stems.get(token);
    if (stemmed === undefined) {
      stemmed = ASCII_WORD.test(token) ? stemmer(token) : token;
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
