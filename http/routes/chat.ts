import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ErrorType } from '../../lib/errors.js';
import type { Logger } from '../../lib/telemetry/logger.js';
import type { AnswerQueryResult, Source } from '../../contracts/query.js';
import type { AnswerStream } from '../../client/answer-stream.js';
import type { RouteContext, TypedApp } from '../context.js';
import { errors, HttpError, streamError } from '../errors.js';
import { standaloneQuestion } from '../../lib/conversation/standalone-question.js';
import { writeEventStream } from '../event-stream.js';
import { QueryResult } from './query.js';

/** The one model `/v1/models` lists: ragline's answer workflow, whichever LLM the workers are configured with. */
const MODEL_ID = 'ragline';

/**
 * Bounds of the conversation a request may carry. Below the server's 64 KiB body limit, so a long conversation gets
 * this route's 400 naming the bound rather than a bare 413; and far below Temporal's 2 MB payload limit.
 */
export const MAX_CHAT_MESSAGES = 64;
export const MAX_CHAT_BYTES = 48 * 1024;

// Fields of OpenAI's request that ragline cannot honour: named in a 400 rather than ignored, so a client that relies
// on them learns it at once.
const UNSUPPORTED_FIELDS = ['tools', 'tool_choice', 'functions', 'function_call', 'audio', 'modalities'] as const;

const TextPart = z.strictObject({ type: z.literal('text'), text: z.string() });
const MessageContent = z.union([z.string(), z.array(z.looseObject({ type: z.string() }))]);

const ChatMessage = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: MessageContent.nullable().optional(),
  name: z.string().max(256).optional(),
});

const ChatCompletionRequest = z
  .looseObject({
    model: z.string().min(1).max(256).describe(`Must be \`${MODEL_ID}\`, the model \`GET /v1/models\` lists`),
    messages: z.array(ChatMessage).min(1).describe('The conversation; the last message is the question (role user)'),
    stream: z.boolean().nullable().optional(),
    stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
    max_tokens: z.int().min(1).nullable().optional(),
    max_completion_tokens: z.int().min(1).nullable().optional(),
    temperature: z.number().min(0).max(2).nullable().optional(),
    user: z.string().max(200).optional().describe('Recorded as the query’s user id'),
    n: z.int().min(1).max(1).nullable().optional().describe('Only 1: ragline writes one answer'),
  })
  .meta({ id: 'ChatCompletionRequest' });

const UrlCitation = z.object({
  type: z.literal('url_citation'),
  url_citation: z.object({
    url: z.string().describe('`ragline://<tenant>/documents/<docId>#<chunkId>`: stable for a document and chunk'),
    title: z.string(),
    start_index: z.int().describe('Where the `[n]` marker starts in the content (UTF-16 code units)'),
    end_index: z.int().describe('Just past the marker'),
  }),
});

const Usage = z.object({ prompt_tokens: z.int(), completion_tokens: z.int(), total_tokens: z.int() });

const ChatCompletion = z
  .object({
    id: z.string().describe('The query id (the workflow id), as `/v1/queries/:id` takes it'),
    object: z.literal('chat.completion'),
    created: z.int(),
    model: z.string(),
    choices: z.array(
      z.object({
        index: z.int(),
        message: z.object({
          role: z.literal('assistant'),
          content: z.string(),
          refusal: z.null(),
          annotations: z.array(UrlCitation),
        }),
        finish_reason: z.literal('stop'),
        logprobs: z.null(),
      }),
    ),
    usage: Usage,
    ragline: QueryResult.extend({
      question: z
        .string()
        .describe('The question searched and cached: the last user message, made standalone when it was a follow-up'),
    }).describe(
      'Extension: the whole ragline result (query id, sources with snippets, degraded flags, rung, quality tier, cache levels)',
    ),
  })
  .meta({ id: 'ChatCompletion' });

const ModelList = z.object({
  object: z.literal('list'),
  data: z.array(z.object({ id: z.string(), object: z.literal('model'), created: z.int(), owned_by: z.string() })),
});

type ChatRequest = z.infer<typeof ChatCompletionRequest>;

/**
 * The question of a chat request: its last message, which must be the user's text, made standalone from the earlier
 * user messages when it leans on them. Throws a 400 naming the field.
 */
function chatQuestion(body: ChatRequest): string {
  for (const field of UNSUPPORTED_FIELDS)
    if (body[field] !== undefined && body[field] !== null)
      throw badField(field, `${field} is not supported: ragline answers from its documents and calls no tools`);
  if (body.model !== MODEL_ID)
    throw new HttpError(
      404,
      ErrorType.NotFound,
      `model "${body.model}" does not exist; GET /v1/models lists "${MODEL_ID}"`,
    );
  if (body.messages.length > MAX_CHAT_MESSAGES)
    throw badField(
      'messages',
      `the conversation has ${body.messages.length} messages; the maximum is ${MAX_CHAT_MESSAGES}: start a new one`,
    );
  const bytes = Buffer.byteLength(JSON.stringify(body.messages));
  if (bytes > MAX_CHAT_BYTES)
    throw badField('messages', `the conversation is ${bytes} bytes; the maximum is ${MAX_CHAT_BYTES}: start a new one`);
  const texts = body.messages.map((message, i) => textOf(message.content, `messages[${i}].content`));
  const last = body.messages.at(-1)!;
  if (last.role !== 'user') throw badField('messages', `the last message must have role user, not ${last.role}`);
  if (texts.at(-1)!.trim() === '') throw badField('messages', 'the last user message is empty');
  return standaloneQuestion(texts.filter((_, i) => body.messages[i]!.role === 'user')).question;
}

function textOf(content: z.infer<typeof MessageContent> | null | undefined, where: string): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  return content
    .map((part, j) => {
      const text = TextPart.safeParse(part);
      if (!text.success)
        throw badField(`${where}[${j}]`, `${where}[${j}] is of type ${part.type}: ragline reads text parts only`);
      return text.data.text;
    })
    .join('');
}

const badField = (field: string, message: string) => new HttpError(400, ErrorType.InvalidInput, `${field}: ${message}`);

/** A stable reference to a cited chunk: documents carry no public URL, so one in ragline's own scheme. */
const referenceOf = (tenant: string, source: Source) =>
  `ragline://${tenant}/documents/${encodeURIComponent(source.docId)}#${encodeURIComponent(source.chunkId)}`;

/** Every `[n]` marker of the answer that names one of its sources, as an OpenAI `url_citation` annotation. */
function annotationsOf(result: AnswerQueryResult): Array<z.infer<typeof UrlCitation>> {
  const byN = new Map(result.sources.map((source) => [source.n, source]));
  const annotations: Array<z.infer<typeof UrlCitation>> = [];
  for (const match of result.answer.matchAll(/\[(\d{1,3})\]/g)) {
    const source = byN.get(Number(match[1]));
    if (!source) continue;
    annotations.push({
      type: 'url_citation',
      url_citation: {
        url: referenceOf(result.tenant, source),
        title: source.title,
        start_index: match.index,
        end_index: match.index + match[0].length,
      },
    });
  }
  return annotations;
}

function usageOf(result: AnswerQueryResult) {
  const prompt = result.usage?.promptTokens ?? 0;
  const completion = result.usage?.completionTokens ?? 0;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** The result as the extension field carries it: with the (standalone) question that was searched and cached. */
const asBody = (result: AnswerQueryResult, question: string) =>
  ({ ...result, question }) as AnswerQueryResult & Record<string, unknown>;
const nowSeconds = () => Math.floor(Date.now() / 1000);

/**
 * OpenAI's Chat Completions over ragline: `POST /v1/chat/completions` runs one query workflow for the last user
 * message, as `POST /v1/query` does (same caches, deadline, breakers and ladder), and `GET /v1/models` lists the one
 * model. Same tokens, tenant binding, `query` scope and rate limit as the rest of the API.
 */
export function chatRoutes(logger: Logger | undefined) {
  return (app: TypedApp, { ragline, tenantOf }: RouteContext) => {
    const api = app.withTypeProvider<ZodTypeProvider>();

    api.get(
      '/v1/models',
      {
        config: { scope: 'query' },
        schema: {
          summary: 'The models a chat completion may name (OpenAI-compatible): ragline alone',
          response: { 200: ModelList, ...errors(401, 403, 429) },
        },
      },
      async () => ({
        object: 'list' as const,
        data: [{ id: MODEL_ID, object: 'model' as const, created: 0, owned_by: 'ragline' }],
      }),
    );

    api.post(
      '/v1/chat/completions',
      {
        config: { scope: 'query' },
        schema: {
          summary: 'Answer the last user message, OpenAI Chat Completions compatible',
          description:
            'One query workflow for the last user message, with its `[n]` citations as `url_citation` annotations ' +
            'and the whole ragline result in the `ragline` field. A follow-up that leans on earlier user messages is ' +
            'made standalone from them (model-free) before the caches and retrieval; system and assistant messages ' +
            'are accepted but not yet passed to generation. `n` above 1, tools and non-text parts are a ' +
            '400 naming the field. `max_tokens`, `max_completion_tokens` and `temperature` are validated; the ' +
            "workers' configured generation settings apply.",
          body: ChatCompletionRequest,
          response: {
            200: {
              description:
                'The completion; with `stream: true` a text/event-stream of `chat.completion.chunk` objects instead: ' +
                'content deltas as tokens are written, a chunk whose `ragline.reset` is true when the answer is ' +
                'written again (drop the content so far), a last chunk with `finish_reason`, the annotations and the ' +
                'whole result in `ragline`, a usage chunk when `stream_options.include_usage`, then `[DONE]`.',
              content: {
                'application/json': { schema: ChatCompletion },
                'text/event-stream': { schema: z.string().describe('Server-Sent Events, as described above') },
              },
            },
            ...errors(400, 401, 403, 404, 413, 415, 429, 500, 503),
          },
        },
      },
      async (request, reply) => {
        const question = chatQuestion(request.body);
        const input = { query: question, tenant: tenantOf(request), userId: request.body.user };
        if (request.body.stream) {
          const stream = await ragline.askStream(input);
          return sendChunks(
            request,
            reply,
            stream,
            { question, includeUsage: request.body.stream_options?.include_usage === true },
            logger,
          );
        }
        const result = await ragline.ask(input);
        return reply.code(200).send({
          id: result.queryId,
          object: 'chat.completion' as const,
          created: nowSeconds(),
          model: MODEL_ID,
          choices: [
            {
              index: 0,
              message: {
                role: 'assistant' as const,
                content: result.answer,
                refusal: null,
                annotations: annotationsOf(result),
              },
              finish_reason: 'stop' as const,
              logprobs: null,
            },
          ],
          usage: usageOf(result),
          ragline: asBody(result, question),
        });
      },
    );
  };
}

/**
 * Writes an answer stream as OpenAI's `chat.completion.chunk` events. Whatever the token channel delivered, the
 * content since the last reset equals the answer of record when the stream ends: a remainder is sent, or a reset and
 * the whole answer when the tokens heard were not its beginning (a cache hit, or no channel, sends it whole).
 */
function sendChunks(
  request: FastifyRequest,
  reply: FastifyReply,
  stream: AnswerStream,
  { question, includeUsage }: { question: string; includeUsage: boolean },
  logger: Logger | undefined,
): Promise<void> {
  const created = nowSeconds();
  return writeEventStream(reply, stream, async (frame) => {
    const write = (data: unknown) => frame(`data: ${JSON.stringify(data)}\n\n`);
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      write({ id: stream.queryId, object: 'chat.completion.chunk', created, model: MODEL_ID, choices, ...extra });
    const delta = (content: Record<string, unknown>, extra?: Record<string, unknown>) =>
      chunk([{ index: 0, delta: content, finish_reason: null, logprobs: null }], extra);
    const reset = () => delta({}, { ragline: { reset: true } });
    delta({ role: 'assistant', content: '' });
    let shown = '';
    try {
      for await (const event of stream) {
        if (event.type === 'delta') {
          shown += event.text;
          delta({ content: event.text });
        } else if (event.type === 'reset') {
          shown = '';
          reset();
        } else {
          const { answer } = event.result;
          if (!answer.startsWith(shown)) {
            reset();
            shown = '';
          }
          if (answer.length > shown.length) delta({ content: answer.slice(shown.length) });
          chunk(
            [{ index: 0, delta: { annotations: annotationsOf(event.result) }, finish_reason: 'stop', logprobs: null }],
            { ragline: asBody(event.result, question) },
          );
          if (includeUsage) chunk([], { usage: usageOf(event.result) });
          frame('data: [DONE]\n\n');
        }
      }
    } catch (error) {
      write(streamError(error, request, logger));
    }
  });
}
