package esdnative.uce;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The closed form's inputs, in the text encoder's space (width {@code dim}): each term asks that the edited W map
 * {@code key} to what the original W maps {@code guide} to, with weight {@code scale}. An erase term's guide is
 * its guide concept's vector; a preserve term is its own guide. Per module, with W the original weight:
 * <pre>
 *   mat1 = λW + Σ s (W guide) keyᵀ      mat2 = λI + Σ s key keyᵀ      W_new = mat1 · mat2⁻¹
 * </pre>
 */
public record EditTerms(int dim, double lamb, List<Term> erase, List<Term> preserve) {

    /** One (key, guide, scale); vectors of length dim. */
    public record Term(double[] key, double[] guide, double scale) {}

    public EditTerms {
        erase = List.copyOf(erase);
        preserve = List.copyOf(preserve);
        for (Term t : erase) checkDim(t, dim);
        for (Term t : preserve) checkDim(t, dim);
    }

    /** The terms of {@code s}, with the concept vectors from {@code encoder}. */
    public static EditTerms of(ConceptEncoder encoder, UceSettings s) {
        return s.form() == UceForm.F2025 ? form2025(encoder, s) : form2023(encoder, s);
    }

    /** 2025: one term per concept, c(text) = the last real token's state. */
    private static EditTerms form2025(ConceptEncoder encoder, UceSettings s) {
        List<String> texts = distinctTexts(s);
        double[][] states = encoder.lastTokenStates(texts);
        Map<String, double[]> c = new HashMap<>();
        for (int i = 0; i < texts.size(); i++) c.put(texts.get(i), states[i]);
        List<Term> erase = new ArrayList<>(), preserve = new ArrayList<>();
        for (int i = 0; i < s.erase().size(); i++) {
            erase.add(new Term(c.get(s.erase().get(i)), c.get(s.guide(i)), s.eraseScale()));
        }
        double sp = s.effectivePreserveScale();
        for (String p : s.preserved()) preserve.add(new Term(c.get(p), c.get(p), sp));
        return new EditTerms(encoder.dim(), s.lamb(), erase, preserve);
    }

    /**
     * 2023: an erase pair (old, new) aligns the two prompts at their last real tokens i_o, i_n and pairs the
     * following rows up to the end (last token, EOS, padding): keys old[i_o + r], guides new[i_n + r] for
     * r < length − max(i_o, i_n). A "" guide is " " in that code (the same tokens). Every preserved text adds all
     * its rows.
     */
    private static EditTerms form2023(ConceptEncoder encoder, UceSettings s) {
        List<String> texts = distinctTexts(s);
        double[][][] all = encoder.allStates(texts);
        Map<String, double[][]> states = new HashMap<>();
        for (int i = 0; i < texts.size(); i++) states.put(texts.get(i), all[i]);
        List<Term> erase = new ArrayList<>(), preserve = new ArrayList<>();
        for (int i = 0; i < s.erase().size(); i++) {
            String old = s.erase().get(i), guide = s.guide(i);
            double[][] keys = states.get(old), guides = states.get(guide);
            int io = encoder.lastTokenIndex(old), in = encoder.lastTokenIndex(guide);
            int rows = encoder.length() - Math.max(io, in);
            for (int r = 0; r < rows; r++) erase.add(new Term(keys[io + r], guides[in + r], s.eraseScale()));
        }
        double sp = s.effectivePreserveScale();
        for (String p : s.preserved()) {
            for (double[] row : states.get(p)) preserve.add(new Term(row, row, sp));
        }
        return new EditTerms(encoder.dim(), s.lamb(), erase, preserve);
    }

    /** Every text the edit needs, each once (encoded once). */
    private static List<String> distinctTexts(UceSettings s) {
        Set<String> all = new LinkedHashSet<>(s.erase());
        for (int i = 0; i < s.erase().size(); i++) all.add(s.guide(i));
        all.addAll(s.preserved());
        return new ArrayList<>(all);
    }

    private static void checkDim(Term t, int dim) {
        if (t.key().length != dim || t.guide().length != dim) {
            throw new IllegalArgumentException("term vectors of length " + t.key().length + "/" + t.guide().length
                    + ", expected " + dim);
        }
    }
}
