/**
 * Model-free rewriting of a follow-up question into one that can be searched on its own: when the last question
 * leans on an earlier one ("and how long is that link valid?"), the content words of the latest earlier question
 * that has some are appended to it. Pure and deterministic, so the caches key on the same text every time. Its
 * retrieval quality on the sample corpus's follow-ups is measured by `npm run bench -- follow-ups`.
 */

/** Words that carry no topic: a question made of these and a few others leans on the conversation. */
const STOPWORDS = new Set(
  (
    'a an the and or but if then so to of in on at by for with from into about as is are was were be been being am ' +
    'do does did done doing have has had having can could will would shall should may might must i me my mine we us ' +
    'our ours you your yours he him his she her it its they them their theirs this that these those there here what ' +
    'which who whom whose when where why how not no yes any some all each every other another one ones more most ' +
    'also just only too very than still ever again afterwards instead really please tell know need want get got use ' +
    'used using make way thing things much many own same lumen'
  ).split(' '),
);

/** Words that point back at something said before. */
const ANAPHORA = new Set(
  'it its it’s that this these those they them their there one ones he she him her'.split(' ').concat(["it's"]),
);

const LEADING_CONNECTIVE = /^\s*(and|but|also|so|then|or|what about|how about)\b/i;

const wordsOf = (text: string) => text.toLowerCase().match(/[\p{L}\p{N}][\p{L}\p{N}'’-]*/gu) ?? [];

const contentWords = (text: string) => wordsOf(text).filter((word) => !STOPWORDS.has(word) && word.length > 1);

/** A question with at most this many content words of its own is taken to lean on the conversation. */
const SHORT_QUESTION_WORDS = 2;

export interface StandaloneQuestion {
  question: string;
  /** True when words of earlier questions were added. */
  rewritten: boolean;
}

/**
 * The question to search for the last of `questions` (the user's messages, oldest first). A question that stands on
 * its own is returned as it is.
 */
export function standaloneQuestion(questions: readonly string[]): StandaloneQuestion {
  const last = questions.at(-1) ?? '';
  if (questions.length < 2) return { question: last, rewritten: false };
  const own = contentWords(last);
  const leans =
    LEADING_CONNECTIVE.test(last) ||
    wordsOf(last).some((word) => ANAPHORA.has(word)) ||
    own.length <= SHORT_QUESTION_WORDS;
  if (!leans) return { question: last, rewritten: false };
  const present = new Set(own);
  for (let i = questions.length - 2; i >= 0; i -= 1) {
    const added = [...new Set(contentWords(questions[i]!))].filter((word) => !present.has(word));
    if (added.length > 0) return { question: `${last.trim()} (${added.join(' ')})`, rewritten: true };
  }
  return { question: last, rewritten: false };
}
