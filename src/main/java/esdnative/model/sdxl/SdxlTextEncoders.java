package esdnative.model.sdxl;

import esdnative.backend.Backend;
import esdnative.model.clip.ClipTextModel;
import esdnative.model.clip.ClipTextModelWithProjection;
import esdnative.tensor.Tensor;
import esdnative.text.ClipTokenizer;

/**
 * SDXL's two text encoders, as StableDiffusionXLPipeline.encode_prompt (diffusers 0.21.4) uses them: each encodes
 * the prompt tokenized by its own tokenizer (they differ only in the padding: {@code <|endoftext|>} / {@code !});
 * each contributes its penultimate hidden state (hidden_states[-2], before the final LayerNorm), concatenated on
 * the feature axis; the second also gives the pooled, projected text_embeds.
 *
 * @param forceZerosForEmptyPrompt model_index.json's force_zeros_for_empty_prompt: without a negative prompt, the
 *                                 unconditional input is all zeros instead of the encoded ""
 */
public record SdxlTextEncoders(ClipTextModel textEncoder, ClipTokenizer tokenizer,
                               ClipTextModelWithProjection textEncoder2, ClipTokenizer tokenizer2,
                               boolean forceZerosForEmptyPrompt) {

    /** Width of the cross-attention context: both encoders' hidden sizes. */
    public int contextDim() {
        return textEncoder.config().hiddenSize() + textEncoder2.text().config().hiddenSize();
    }

    /** encode_prompt's prompt_embeds and pooled_prompt_embeds for one prompt. */
    public PromptEmbeds encode(String prompt) {
        Backend be = textEncoder.backend();
        int[] ids1 = tokenizer.encodePadded(prompt);
        int[] ids2 = tokenizer2.encodePadded(prompt);
        Tensor h1 = textEncoder.states(ids1, 1, textEncoder.config().numHiddenLayers() - 1).hidden();
        ClipTextModelWithProjection.Output out2 = textEncoder2.encode(ids2, 1,
                textEncoder2.text().config().numHiddenLayers() - 1);
        Tensor h2 = out2.hidden();
        int seq = h1.dim(1), c1 = h1.dim(2), c2 = h2.dim(2);
        if (h2.dim(1) != seq) throw new IllegalArgumentException("the tokenizers give " + seq + " and " + h2.dim(1) + " tokens");
        Tensor embeds = be.zeros(1, seq, c1 + c2);
        be.concatChannels(embeds, h1, h2, seq, c1, c2, 1); // per token: [h1 | h2]
        return new PromptEmbeds(embeds, out2.textEmbeds());
    }

    /**
     * encode_prompt's negative_prompt_embeds and negative_pooled_prompt_embeds: zeros when no negative prompt is
     * given ({@code null}) and the model forces zeros, else the encoded negative prompt ("" when none is given).
     */
    public PromptEmbeds encodeNegative(String negativePrompt, PromptEmbeds prompt) {
        if (negativePrompt == null && forceZerosForEmptyPrompt) {
            Backend be = textEncoder.backend();
            return new PromptEmbeds(be.zeros(prompt.embeds().shape()), be.zeros(prompt.pooled().shape()));
        }
        return encode(negativePrompt == null ? "" : negativePrompt);
    }
}
