package esdnative.eval;

/**
 * One evaluation prompt: its text, the seed of its first image (sample k uses seed + k, the same for every
 * model), the paper CSV's case number, and the class it shows (null when the prompt carries none).
 */
public record EvalPrompt(String prompt, long seed, int caseNumber, String className) {}
