package esdnative.text;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.util.UserError;
import esdnative.io.Json;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * CLIP's byte-level BPE tokenizer, as transformers 4.33's (slow) {@code CLIPTokenizer} runs it in a Stable Diffusion
 * pipeline where ftfy is not installed: text cleanup by transformers' BasicTokenizer (control characters dropped,
 * whitespace collapsed, CJK ideographs spaced, NFC, lower case; no accent stripping, no punctuation split), then
 * the CLIP regex, the byte→unicode map, BPE with {@code </w>} word ends, and {@code [BOS] ids [EOS] pad...} to
 * {@code model_max_length} (77), truncating the ids so that EOS is kept.
 *
 * <p>With ftfy installed transformers would also run {@code ftfy.fix_text} (NFKC-like fixes of full-width letters,
 * ligatures, smart quotes, mojibake); this class does not.
 * See https://github.com/huggingface/transformers/blob/v4.33.0/src/transformers/models/clip/tokenization_clip.py
 */
public final class ClipTokenizer {
    /** CLIP's pre-tokenizer regex (the `regex` module's, IGNORECASE); the special tokens match whole. */
    private static final Pattern WORDS = Pattern.compile(
            "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+",
            Pattern.CASE_INSENSITIVE | Pattern.UNICODE_CHARACTER_CLASS);
    private static final String WORD_END = "</w>";
    /** transformers reads merges.txt lines [1, 49152 - 256 - 2 + 1): at most this many merges. */
    private static final int MAX_MERGES = 49152 - 256 - 2;

    private static final String[] BYTE_TO_UNICODE = byteToUnicode();

    private final Map<String, Integer> vocab;
    private final Map<String, Integer> mergeRanks;   // "first second" → rank (lower merges first)
    private final List<String> noSplitTokens;        // special tokens, split out of the text before cleanup
    private final int bosId;
    private final int eosId;
    private final int padId;
    private final int unkId;
    private final int maxLength;
    private final Map<String, String> bpeCache = new ConcurrentHashMap<>();

    private ClipTokenizer(Map<String, Integer> vocab, Map<String, Integer> mergeRanks, String bos, String eos,
                          String pad, String unk, int maxLength) {
        this.vocab = vocab;
        this.mergeRanks = mergeRanks;
        this.bosId = idOf(bos, "bos_token");
        this.eosId = idOf(eos, "eos_token");
        this.padId = idOf(pad, "pad_token");
        this.unkId = idOf(unk, "unk_token");
        this.maxLength = maxLength;
        // longest first, so that a special token containing another one wins (the trie's leftmost-longest match)
        this.noSplitTokens = new ArrayList<>(List.of(bos, eos, pad, unk).stream().distinct().toList());
        this.noSplitTokens.sort((a, b) -> b.length() - a.length());
        // CLIPTokenizer's bpe cache starts with the two special tokens, so the regex's special alternatives map whole
        bpeCache.put("<|startoftext|>", "<|startoftext|>");
        bpeCache.put("<|endoftext|>", "<|endoftext|>");
    }

    /**
     * Loads {@code vocab.json} and {@code merges.txt} from a diffusers {@code tokenizer/} folder, plus the special
     * tokens and {@code model_max_length} from {@code tokenizer_config.json} and {@code special_tokens_map.json}
     * when present (the latter wins, as in transformers); defaults are SD1.x's.
     */
    public static ClipTokenizer load(Path folder) {
        Path vocabFile = folder.resolve("vocab.json");
        Path mergesFile = folder.resolve("merges.txt");
        for (Path p : List.of(vocabFile, mergesFile)) {
            if (!Files.isRegularFile(p)) throw new UserError("tokenizer: " + p + " not found");
        }
        Map<String, Integer> vocab = new HashMap<>();
        JsonNode vocabJson = Json.tree(vocabFile);
        vocabJson.properties().forEach(e -> {
            if (!e.getValue().isInt()) throw new UserError("tokenizer: " + vocabFile + ": id of '" + e.getKey() + "' is not an integer");
            vocab.put(e.getKey(), e.getValue().asInt());
        });

        Map<String, Integer> ranks = new HashMap<>();
        List<String> lines;
        try {
            lines = Arrays.asList(Files.readString(mergesFile, StandardCharsets.UTF_8).strip().split("\n"));
        } catch (IOException e) {
            throw new UserError("tokenizer: cannot read " + mergesFile + ": " + e.getMessage(), e);
        }
        // line 0 is the "#version" header
        for (int i = 1; i < Math.min(lines.size(), MAX_MERGES + 1); i++) {
            String[] pair = lines.get(i).strip().split("\\s+");
            if (pair.length != 2) throw new UserError("tokenizer: " + mergesFile + " line " + (i + 1) + " is not a pair");
            ranks.putIfAbsent(pair[0] + " " + pair[1], i - 1);
        }

        Map<String, String> special = new HashMap<>(Map.of(
                "bos_token", "<|startoftext|>", "eos_token", "<|endoftext|>",
                "pad_token", "<|endoftext|>", "unk_token", "<|endoftext|>"));
        int maxLength = 77;
        for (String name : List.of("tokenizer_config.json", "special_tokens_map.json")) {
            Path file = folder.resolve(name);
            if (!Files.isRegularFile(file)) continue;
            JsonNode config = Json.tree(file);
            for (String key : List.copyOf(special.keySet())) {
                JsonNode v = config.get(key);
                if (v == null || v.isNull()) continue;
                JsonNode content = v.isObject() ? v.get("content") : v;
                if (content == null || !content.isTextual()) throw new UserError("tokenizer: " + file + ": " + key + " has no text");
                special.put(key, content.asText());
            }
            JsonNode max = config.get("model_max_length");
            // transformers writes a huge sentinel when no limit is known; CLIP's text model needs 77 anyway
            if (max != null && max.canConvertToInt() && max.asInt() < 100_000) maxLength = max.asInt();
        }
        if (maxLength < 2) throw new UserError("tokenizer: model_max_length " + maxLength + " leaves no room for BOS and EOS");
        return new ClipTokenizer(vocab, ranks, special.get("bos_token"), special.get("eos_token"),
                special.get("pad_token"), special.get("unk_token"), maxLength);
    }

    /**
     * A stand-in with CLIP's special tokens only (every word is the unknown token): for runs that count work
     * ({@code bench --check-only}), where the prompt's ids change no shape and no count.
     */
    public static ClipTokenizer specialTokensOnly() {
        String bos = "<|startoftext|>", eos = "<|endoftext|>";
        return new ClipTokenizer(Map.of(bos, 49406, eos, 49407), Map.of(), bos, eos, eos, eos, 77);
    }

    private int idOf(String token, String role) {
        Integer id = vocab.get(token);
        if (id == null) throw new UserError("tokenizer: " + role + " '" + token + "' is not in vocab.json");
        return id;
    }

    public int bosId() { return bosId; }

    public int eosId() { return eosId; }

    public int padId() { return padId; }

    /** Sequence length of {@link #encodePadded} (77 for CLIP). */
    public int maxLength() { return maxLength; }

    /** The token ids of {@code text} alone: no BOS/EOS, no truncation, no padding. */
    public int[] encode(String text) {
        List<Integer> ids = new ArrayList<>();
        for (String bpeToken : tokenize(text)) {
            Integer id = vocab.get(bpeToken);
            ids.add(id != null ? id : unkId);
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    /**
     * What a Stable Diffusion pipeline feeds the text encoder: [BOS] ids [EOS] then pad ids up to
     * {@link #maxLength()}; the ids are truncated to maxLength − 2 so that EOS is always present.
     */
    public int[] encodePadded(String text) {
        int[] ids = encode(text);
        int kept = Math.min(ids.length, maxLength - 2);
        int[] out = new int[maxLength];
        Arrays.fill(out, padId);
        out[0] = bosId;
        System.arraycopy(ids, 0, out, 1, kept);
        out[kept + 1] = eosId;
        return out;
    }

    /** {@link #encodePadded} for each prompt, concatenated: ids [prompts, maxLength] for the text encoder. */
    public int[] encodeBatch(List<String> prompts) {
        int[] ids = new int[prompts.size() * maxLength];
        for (int p = 0; p < prompts.size(); p++) {
            System.arraycopy(encodePadded(prompts.get(p)), 0, ids, p * maxLength, maxLength);
        }
        return ids;
    }

    /** BPE token strings (in the byte→unicode alphabet, words ending in {@code </w>}); special tokens whole. */
    public List<String> tokenize(String text) {
        List<String> tokens = new ArrayList<>();
        int start = 0;
        while (start <= text.length()) {
            // split out the next special token (transformers' added-token trie), tokenizing the text before it
            int hit = -1;
            String special = null;
            for (String s : noSplitTokens) {
                int at = text.indexOf(s, start);
                if (at >= 0 && (hit < 0 || at < hit)) {
                    hit = at;
                    special = s;
                }
            }
            int end = hit < 0 ? text.length() : hit;
            tokenizeChunk(text.substring(start, end), tokens);
            if (hit < 0) break;
            tokens.add(special);
            start = hit + special.length();
        }
        return tokens;
    }

    private void tokenizeChunk(String chunk, List<String> out) {
        Matcher words = WORDS.matcher(BasicCleanup.clean(chunk));
        while (words.find()) {
            StringBuilder mapped = new StringBuilder();
            for (byte b : words.group().getBytes(StandardCharsets.UTF_8)) mapped.append(BYTE_TO_UNICODE[b & 0xff]);
            for (String piece : bpe(mapped.toString()).split(" ")) out.add(piece);
        }
    }

    /** Applies the merges to one word (already in the byte→unicode alphabet); pieces joined by spaces. */
    private String bpe(String token) {
        String cached = bpeCache.get(token);
        if (cached != null) return cached;
        List<String> word = new ArrayList<>();
        for (int i = 0; i < token.length(); i++) word.add(String.valueOf(token.charAt(i)));
        word.set(word.size() - 1, word.getLast() + WORD_END);
        while (word.size() > 1) {
            // the adjacent pair with the lowest merge rank
            String best = null;
            int bestRank = Integer.MAX_VALUE;
            for (int i = 0; i + 1 < word.size(); i++) {
                Integer rank = mergeRanks.get(word.get(i) + " " + word.get(i + 1));
                if (rank != null && rank < bestRank) {
                    bestRank = rank;
                    best = word.get(i) + " " + word.get(i + 1);
                }
            }
            if (best == null) break;
            String first = best.substring(0, best.indexOf(' '));
            String second = best.substring(best.indexOf(' ') + 1);
            // merge every occurrence, left to right
            List<String> merged = new ArrayList<>(word.size());
            for (int i = 0; i < word.size(); i++) {
                if (i + 1 < word.size() && word.get(i).equals(first) && word.get(i + 1).equals(second)) {
                    merged.add(first + second);
                    i++;
                } else {
                    merged.add(word.get(i));
                }
            }
            word = merged;
        }
        String result = String.join(" ", word);
        bpeCache.put(token, result);
        return result;
    }

    /**
     * GPT-2's reversible byte → printable-character map: printable Latin-1 bytes map to themselves, the other 68
     * bytes to U+0100 onwards, in byte order.
     */
    private static String[] byteToUnicode() {
        String[] map = new String[256];
        int next = 256;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = String.valueOf((char) (printable ? b : next++));
        }
        return map;
    }
}
