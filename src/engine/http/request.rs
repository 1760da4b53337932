//! The request body of one run, per API (chat or completions) and server (llama-server, vLLM,
//! another OpenAI-compatible server): the standard fields, and each server's own for exact token
//! counts, EOS handling, the prefix cache and the sampler chain.

use serde_json::{json, Value};

use super::{Api, Flavor, HttpEngine};
use crate::engine::Request;

impl HttpEngine {
    /// A `cache_salt` no earlier request carried.
    fn next_salt(&self) -> String {
        format!("inproc-bench-{}-{}", self.salt_tag, self.requests)
    }

    /// The request body for one run.
    pub(super) fn body(&self, req: &Request<'_>) -> Value {
        let s = req.sampling;
        let mut body = json!({
            "model": self.model_id,
            "max_tokens": req.prompt.max_tokens,
            "temperature": s.temperature,
            "seed": s.seed,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        match self.settings.api {
            Api::Chat => {
                body["messages"] = json!([{"role": "user", "content": req.prompt.text}]);
                if !self.chat_kwargs.is_empty() {
                    body["chat_template_kwargs"] = Value::Object(self.chat_kwargs.clone());
                }
            }
            Api::Completions => body["prompt"] = json!(req.prompt.text),
        }
        if s.ignore_eos && self.flavor != Flavor::Other {
            body["ignore_eos"] = json!(true);
        }
        if self.flavor == Flavor::Vllm {
            // Each chunk then carries its token ids: tokens are counted, not chunks.
            body["return_token_ids"] = json!(true);
            if !req.prefix_cache {
                // vLLM caches prompt prefixes by default: a salt no other request has makes every
                // block of this prompt a miss, so each run evaluates its whole prompt.
                body["cache_salt"] = json!(self.next_salt());
            }
        }
        if self.flavor == Flavor::LlamaServer {
            body["cache_prompt"] = json!(req.prefix_cache);
            body["timings_per_token"] = json!(true);
            if self.settings.inprocess_sampling {
                body["samplers"] = json!(["temperature"]);
            }
        }
        body
    }
}
