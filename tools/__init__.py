"""Developer tools: client generation (gen_protos) and the API baseline (api_baseline)."""
