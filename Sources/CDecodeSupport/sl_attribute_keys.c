#include "sl_attribute_keys.h"
#include <pthread.h>
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

/* The entries grouped by key length (a counting sort, built once): a lookup compares
 * only the few keys of its length, most lengths have none. */
#define SL_KEY_ENTRIES (sizeof(sl_keys) / sizeof(sl_keys[0]))
#define SL_MAX_KEY_LENGTH 63
static unsigned char sl_by_length[SL_KEY_ENTRIES];
static unsigned char sl_length_start[SL_MAX_KEY_LENGTH + 2];
static pthread_once_t sl_by_length_once = PTHREAD_ONCE_INIT;

static void sl_build_by_length(void) {
    unsigned counts[SL_MAX_KEY_LENGTH + 2] = {0};
    for (size_t i = 0; i < SL_KEY_ENTRIES; i++) counts[sl_keys[i].length + 1]++;
    for (size_t n = 1; n < SL_MAX_KEY_LENGTH + 2; n++) counts[n] += counts[n - 1];
    for (size_t n = 0; n < SL_MAX_KEY_LENGTH + 2; n++) sl_length_start[n] = (unsigned char)counts[n];
    unsigned next[SL_MAX_KEY_LENGTH + 1];
    for (size_t n = 0; n <= SL_MAX_KEY_LENGTH; n++) next[n] = counts[n];
    for (size_t i = 0; i < SL_KEY_ENTRIES; i++) sl_by_length[next[sl_keys[i].length]++] = (unsigned char)i;
}

/* Every interpreted key starts with one of these letters: the rest are rejected at once. */
static int sl_may_be_key(char first) {
    switch (first) {
    case 'g': case 'l': case 'o': case 't': case 'h': case 'r': case 's': return 1;
    default: return 0;
    }
}

sl_key sl_attribute_key(const char *key) {
    if (key == NULL || !sl_may_be_key(key[0])) return SL_KEY_NONE;
    return sl_attribute_key_n(key, strnlen(key, SL_MAX_KEY_LENGTH + 1));
}

sl_key sl_attribute_key_n(const char *key, size_t n) {
    if (key == NULL || n == 0 || n > SL_MAX_KEY_LENGTH || !sl_may_be_key(key[0])) return SL_KEY_NONE;
    pthread_once(&sl_by_length_once, sl_build_by_length);
    for (unsigned j = sl_length_start[n]; j < sl_length_start[n + 1]; j++) {
        const sl_key_entry *e = &sl_keys[sl_by_length[j]];
        if (e->name[0] == key[0] && memcmp(e->name, key, n) == 0) return e->id;
    }
    return SL_KEY_NONE;
}
