#include "sl_attribute_keys.h"
#include <string.h>

typedef struct { const char *name; size_t length; sl_key id; } sl_key_entry;

#define K(s, id) { s, sizeof(s) - 1, id }
static const sl_key_entry sl_keys[] = {
    K("gen_ai.operation.name", SL_KEY_GEN_AI_OPERATION_NAME),
    K("openinference.span.kind", SL_KEY_OPENINFERENCE_SPAN_KIND),
    K("traceloop.span.kind", SL_KEY_TRACELOOP_SPAN_KIND),
    K("llm.request.type", SL_KEY_LLM_REQUEST_TYPE),
    K("gen_ai.response.model", SL_KEY_GEN_AI_RESPONSE_MODEL),
    K("gen_ai.request.model", SL_KEY_GEN_AI_REQUEST_MODEL),
    K("llm.model_name", SL_KEY_LLM_MODEL_NAME),
    K("llm.response.model", SL_KEY_LLM_RESPONSE_MODEL),
    K("llm.request.model", SL_KEY_LLM_REQUEST_MODEL),
    K("gen_ai.usage.input_tokens", SL_KEY_INPUT_GEN_AI),
    K("gen_ai.usage.prompt_tokens", SL_KEY_INPUT_GEN_AI_PROMPT),
    K("llm.token_count.prompt", SL_KEY_INPUT_OPENINFERENCE),
    K("llm.usage.prompt_tokens", SL_KEY_INPUT_LLM_USAGE),
    K("gen_ai.usage.output_tokens", SL_KEY_OUTPUT_GEN_AI),
    K("gen_ai.usage.completion_tokens", SL_KEY_OUTPUT_GEN_AI_COMPLETION),
    K("llm.token_count.completion", SL_KEY_OUTPUT_OPENINFERENCE),
    K("llm.usage.completion_tokens", SL_KEY_OUTPUT_LLM_USAGE),
    K("gen_ai.usage.cache_read.input_tokens", SL_KEY_CACHE_READ_GEN_AI),
    K("gen_ai.usage.cache_read_input_tokens", SL_KEY_CACHE_READ_OPENLLMETRY),
    K("llm.token_count.prompt_details.cache_read", SL_KEY_CACHE_READ_OPENINFERENCE),
    K("gen_ai.usage.cache_creation.input_tokens", SL_KEY_CACHE_WRITE_GEN_AI),
    K("gen_ai.usage.cache_creation_input_tokens", SL_KEY_CACHE_WRITE_OPENLLMETRY),
    K("llm.token_count.prompt_details.cache_write", SL_KEY_CACHE_WRITE_OPENINFERENCE),
    K("gen_ai.usage.reasoning.output_tokens", SL_KEY_REASONING_GEN_AI),
    K("gen_ai.usage.reasoning_tokens", SL_KEY_REASONING_GEN_AI_FLAT),
    K("llm.token_count.completion_details.reasoning", SL_KEY_REASONING_OPENINFERENCE),
    K("llm.token_count.total", SL_KEY_TOTAL_OPENINFERENCE),
    K("gen_ai.usage.cost", SL_KEY_COST_GEN_AI),
    K("llm.cost.total", SL_KEY_COST_LLM_TOTAL),
    K("llm.cost.prompt", SL_KEY_COST_LLM_PROMPT),
    K("llm.cost.completion", SL_KEY_COST_LLM_COMPLETION),
    K("gen_ai.workflow.name", SL_KEY_GEN_AI_WORKFLOW_NAME),
    K("traceloop.workflow.name", SL_KEY_TRACELOOP_WORKFLOW_NAME),
    K("gen_ai.agent.name", SL_KEY_GEN_AI_AGENT_NAME),
    K("http.request.resend_count", SL_KEY_HTTP_RESEND_COUNT),
    K("outcome.verdict", SL_KEY_OUTCOME_VERDICT),
    K("review.verdict", SL_KEY_REVIEW_VERDICT),
    K("gen_ai.evaluation.score.label", SL_KEY_EVALUATION_SCORE_LABEL),
    K("service.name", SL_KEY_SERVICE_NAME),
    K("outcome.task_id", SL_KEY_OUTCOME_TASK_ID),
    K("gen_ai.conversation.id", SL_KEY_GEN_AI_CONVERSATION_ID),
};
#undef K

sl_key sl_attribute_key(const char *key) {
    if (key == NULL) return SL_KEY_NONE;
    return sl_attribute_key_n(key, strlen(key));
}

sl_key sl_attribute_key_n(const char *key, size_t n) {
    if (key == NULL || n == 0) return SL_KEY_NONE;
    /* Every interpreted key starts with one of these letters: reject the rest at once. */
    switch (key[0]) {
    case 'g': case 'l': case 'o': case 't': case 'h': case 'r': case 's': break;
    default: return SL_KEY_NONE;
    }
    for (size_t i = 0; i < sizeof(sl_keys) / sizeof(sl_keys[0]); i++) {
        if (sl_keys[i].length == n && sl_keys[i].name[0] == key[0] && memcmp(sl_keys[i].name, key, n) == 0) return sl_keys[i].id;
    }
    return SL_KEY_NONE;
}
