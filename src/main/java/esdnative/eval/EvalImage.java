package esdnative.eval;

/**
 * One generated image of an evaluation and what was measured on it.
 *
 * @param path           relative to the output folder, e.g. images/A/0003-42.png
 * @param model          index into the evaluation's models
 * @param prompt         index into its prompts
 * @param seed           the prompt's seed plus the sample number: the same for every model
 * @param clipScore      100 · max(cos(image, prompt), 0); null without CLIP
 * @param predictedClass zero-shot class (CLIP) or the toy judge's; null where the prompt carries no class
 * @param nsfw           the safety checker's flag; null without one
 */
public record EvalImage(String path, int model, int prompt, long seed, Double clipScore, String predictedClass,
                        Boolean nsfw) {}
