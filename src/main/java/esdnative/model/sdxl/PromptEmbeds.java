package esdnative.model.sdxl;

import esdnative.tensor.Tensor;

/**
 * One prompt as SDXL's UNet reads it: the token embeddings of both text encoders side by side
 * ({@code embeds} [batch, 77, hidden₁ + hidden₂], the cross-attention context) and the second encoder's projected
 * pooled embedding ({@code pooled} [batch, projection], the UNet's added text_embeds).
 */
public record PromptEmbeds(Tensor embeds, Tensor pooled) {}
