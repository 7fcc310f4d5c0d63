import Foundation

/// The built-in price table: list prices (USD per million tokens) of current OpenAI,
/// Anthropic, Google and Mistral models, in the price-file format of Schemas/prices.md.
/// Anthropic cache writes are the 5-minute-cache rate. Tiers: Gemini 2.5 Pro prompts and Claude
/// Sonnet 4/4.5 (1M-context) requests above 200k input tokens are billed at the higher rate for
/// the whole call; the tiers spell out every price, since an omitted one would be the base
/// entry's (thinking tokens bill as output). Override any entry with `--prices`.
public enum BuiltinPrices {
    public static let json = #"""
    {"version": 1, "models": [
      {"match": "gpt-5*", "provider": "openai", "effective_from": "2025-08-07", "input": 1.25, "cached_input": 0.125, "output": 10.00},
      {"match": "gpt-5-mini*", "provider": "openai", "effective_from": "2025-08-07", "input": 0.25, "cached_input": 0.025, "output": 2.00},
      {"match": "gpt-5-nano*", "provider": "openai", "effective_from": "2025-08-07", "input": 0.05, "cached_input": 0.005, "output": 0.40},
      {"match": "gpt-4.1*", "provider": "openai", "effective_from": "2025-04-14", "input": 2.00, "cached_input": 0.50, "output": 8.00},
      {"match": "gpt-4.1-mini*", "provider": "openai", "effective_from": "2025-04-14", "input": 0.40, "cached_input": 0.10, "output": 1.60},
      {"match": "gpt-4.1-nano*", "provider": "openai", "effective_from": "2025-04-14", "input": 0.10, "cached_input": 0.025, "output": 0.40},
      {"match": "gpt-4o*", "provider": "openai", "input": 2.50, "cached_input": 1.25, "output": 10.00},
      {"match": "gpt-4o-2024-05-13", "provider": "openai", "input": 5.00, "output": 15.00},
      {"match": "gpt-4o-mini*", "provider": "openai", "input": 0.15, "cached_input": 0.075, "output": 0.60},
      {"match": "o1*", "provider": "openai", "input": 15.00, "cached_input": 7.50, "output": 60.00},
      {"match": "o1-mini*", "provider": "openai", "input": 1.10, "cached_input": 0.55, "output": 4.40},
      {"match": "o3*", "provider": "openai", "effective_from": "2025-04-16", "input": 10.00, "cached_input": 2.50, "output": 40.00},
      {"match": "o3*", "provider": "openai", "effective_from": "2025-06-10", "input": 2.00, "cached_input": 0.50, "output": 8.00},
      {"match": "o3-mini*", "provider": "openai", "input": 1.10, "cached_input": 0.55, "output": 4.40},
      {"match": "o4-mini*", "provider": "openai", "input": 1.10, "cached_input": 0.275, "output": 4.40},
      {"match": "text-embedding-3-small", "provider": "openai", "input": 0.02, "output": 0},
      {"match": "text-embedding-3-large", "provider": "openai", "input": 0.13, "output": 0},

      {"match": "claude-opus-4*", "provider": "anthropic", "input": 15.00, "cached_input": 1.50, "cache_write": 18.75, "output": 75.00},
      {"match": "claude-opus-4-5*", "provider": "anthropic", "input": 5.00, "cached_input": 0.50, "cache_write": 6.25, "output": 25.00},
      {"match": "claude-sonnet-4*", "provider": "anthropic", "input": 3.00, "cached_input": 0.30, "cache_write": 3.75, "output": 15.00,
       "tiers": [{"above_input_tokens": 200000, "input": 6.00, "cached_input": 0.60, "cache_write": 7.50, "output": 22.50, "reasoning": 22.50}]},
      {"match": "claude-haiku-4*", "provider": "anthropic", "input": 1.00, "cached_input": 0.10, "cache_write": 1.25, "output": 5.00},
      {"match": "claude-3-7-sonnet*", "provider": "anthropic", "input": 3.00, "cached_input": 0.30, "cache_write": 3.75, "output": 15.00},
      {"match": "claude-3-5-sonnet*", "provider": "anthropic", "input": 3.00, "cached_input": 0.30, "cache_write": 3.75, "output": 15.00},
      {"match": "claude-3-5-haiku*", "provider": "anthropic", "input": 0.80, "cached_input": 0.08, "cache_write": 1.00, "output": 4.00},
      {"match": "claude-3-opus*", "provider": "anthropic", "input": 15.00, "cached_input": 1.50, "cache_write": 18.75, "output": 75.00},
      {"match": "claude-3-haiku*", "provider": "anthropic", "input": 0.25, "cached_input": 0.03, "cache_write": 0.30, "output": 1.25},

      {"match": "gemini-2.5-pro*", "provider": "google", "input": 1.25, "cached_input": 0.31, "output": 10.00,
       "tiers": [{"above_input_tokens": 200000, "input": 2.50, "cached_input": 0.625, "cache_write": 2.50, "output": 15.00, "reasoning": 15.00}]},
      {"match": "gemini-2.5-flash*", "provider": "google", "input": 0.30, "cached_input": 0.075, "output": 2.50},
      {"match": "gemini-2.5-flash-lite*", "provider": "google", "input": 0.10, "cached_input": 0.025, "output": 0.40},
      {"match": "gemini-2.0-flash*", "provider": "google", "input": 0.10, "cached_input": 0.025, "output": 0.40},
      {"match": "gemini-2.0-flash-lite*", "provider": "google", "input": 0.075, "output": 0.30},
      {"match": "gemini-1.5-pro*", "provider": "google", "input": 1.25, "cached_input": 0.3125, "output": 5.00},
      {"match": "gemini-1.5-flash*", "provider": "google", "input": 0.075, "cached_input": 0.01875, "output": 0.30},

      {"match": "mistral-large*", "provider": "mistral", "input": 2.00, "output": 6.00},
      {"match": "mistral-medium*", "provider": "mistral", "input": 0.40, "output": 2.00},
      {"match": "mistral-small*", "provider": "mistral", "input": 0.10, "output": 0.30},
      {"match": "magistral-medium*", "provider": "mistral", "input": 2.00, "output": 5.00},
      {"match": "magistral-small*", "provider": "mistral", "input": 0.50, "output": 1.50},
      {"match": "codestral*", "provider": "mistral", "input": 0.30, "output": 0.90},
      {"match": "pixtral-large*", "provider": "mistral", "input": 2.00, "output": 6.00},
      {"match": "ministral-8b*", "provider": "mistral", "input": 0.10, "output": 0.10},
      {"match": "ministral-3b*", "provider": "mistral", "input": 0.04, "output": 0.04},
      {"match": "open-mistral-nemo*", "provider": "mistral", "input": 0.15, "output": 0.15}
    ]}
    """#

    public static let entries: [PriceEntry] = {
        do {
            return try PriceTable.parse(Data(json.utf8), source: .builtin)
        } catch {
            preconditionFailure("built-in price table does not parse: \(error)")
        }
    }()
}
