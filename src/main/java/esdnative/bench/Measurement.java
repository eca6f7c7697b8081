package esdnative.bench;

import java.util.Arrays;

/** Wall-clock times of repeated runs of one piece of work, in milliseconds. */
record Measurement(double[] millis) {

    /** Times {@code repeat} runs of {@code work}. */
    static Measurement of(int repeat, Runnable work) {
        double[] times = new double[repeat];
        for (int i = 0; i < repeat; i++) {
            long start = System.nanoTime();
            work.run();
            times[i] = (System.nanoTime() - start) / 1e6;
        }
        return new Measurement(times);
    }

    double median() {
        double[] s = millis.clone();
        Arrays.sort(s);
        int mid = s.length / 2;
        return s.length % 2 == 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
    }

    double min() { return Arrays.stream(millis).min().orElse(Double.NaN); }

    double max() { return Arrays.stream(millis).max().orElse(Double.NaN); }

    /** "median 12.3 ms (min 11.9, max 14.0, 5 runs)" */
    String summary() {
        return String.format("median %s (min %s, max %s, %d runs)", ms(median()), ms(min()), ms(max()), millis.length);
    }

    /** GFLOP/s at the median time. */
    double gflops(double flopsPerRun) { return flopsPerRun / (median() * 1e6); }

    static String ms(double millis) {
        return millis >= 1000 ? String.format("%.2f s", millis / 1000) : String.format("%.2f ms", millis);
    }
}
