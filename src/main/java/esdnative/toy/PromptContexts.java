package esdnative.toy;

import esdnative.backend.Backend;
import esdnative.model.clip.ClipTextModel;
import esdnative.tensor.Tensor;
import esdnative.text.ClipTokenizer;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** Text-encoder outputs for prompts, computed once per distinct prompt (the encoder is frozen) and batched. */
public final class PromptContexts {
    private final Backend be;
    private final ClipTokenizer tokenizer;
    private final ClipTextModel encoder;
    private final Map<String, float[]> cache = new HashMap<>();

    public PromptContexts(Backend be, ClipTokenizer tokenizer, ClipTextModel encoder) {
        this.be = be;
        this.tokenizer = tokenizer;
        this.encoder = encoder;
    }

    public int tokens() { return tokenizer.maxLength(); }

    public int dim() { return encoder.config().hiddenSize(); }

    /** last_hidden_state of one prompt, [tokens × dim] on the host. */
    public float[] host(String prompt) {
        return cache.computeIfAbsent(prompt, p -> be.toHost(encoder.forward(tokenizer.encodePadded(p), 1)));
    }

    /** Contexts [prompts, tokens, dim] for a batch of prompts. */
    public Tensor batch(List<String> prompts) {
        int per = tokens() * dim();
        float[] all = new float[prompts.size() * per];
        for (int i = 0; i < prompts.size(); i++) System.arraycopy(host(prompts.get(i)), 0, all, i * per, per);
        return be.fromHost(all, prompts.size(), tokens(), dim());
    }
}
