"""Large language models through a local Ollama server (`LLMResource`), OFF unless configured."""
