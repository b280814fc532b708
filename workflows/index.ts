export { answerQueryWorkflow } from './answer-query.js';
export { deleteDocumentsWorkflow, describeCorpusWorkflow, ingestDocumentsWorkflow } from './ingest-documents.js';
export { evaluateOnceWorkflow, evaluationWorkflow } from './evaluation.js';
export { improvementWorkflow } from './improvement.js';
export { recordFeedbackWorkflow } from './feedback.js';
export { reindexEmbeddingsWorkflow } from './reindex-embeddings.js';
