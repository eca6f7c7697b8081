package esdnative.backend.cpu;

import esdnative.backend.Scope;
import esdnative.tensor.Tensor;
import org.junit.jupiter.api.Test;

import static esdnative.backend.cpu.CpuStorage.array;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** CpuBackend's scopes: what is recycled, what is kept, and that recycled tensors still start at zero. */
class ScopeTest {
    private final CpuBackend be = new CpuBackend();

    @Test
    void aClosedScopesTensorsAreReusedZeroFilled() {
        float[] first;
        try (Scope s = be.openScope()) {
            Tensor t = be.zeros(3, 5);
            be.fill(t, 7f);
            first = array(t);
        }
        try (Scope s = be.openScope()) {
            Tensor again = be.zeros(2, 6); // 12 of the recycled array's 15 floats
            assertSame(first, array(again));
            assertArrayEquals(new float[12], be.toHost(again));
            assertNotSame(first, array(be.zeros(15)), "an array is handed out once at a time");
        }
    }

    @Test
    void keptTensorsOutliveTheirScopeAndPassToTheEnclosingOne() {
        float[] kept;
        try (Scope outer = be.openScope()) {
            try (Scope inner = be.openScope()) {
                Tensor t = be.zeros(16);
                inner.keep(t.reshape(4, 4)); // a view keeps its storage
                kept = array(t);
            }
            assertNotSame(kept, array(be.zeros(16)), "kept by the inner scope, so not free");
        }
        try (Scope s = be.openScope()) {
            // the outer scope recycled both its 16-float arrays
            float[] a = array(be.zeros(16)), b = array(be.zeros(16));
            assertTrue(a == kept || b == kept);
        }
    }

    @Test
    void tensorsMadeOutsideScopesAreNeverRecycled() {
        Tensor outside = be.zeros(8);
        try (Scope s = be.openScope()) {
            s.keep(outside); // not the scope's: nothing happens
        }
        try (Scope s = be.openScope()) {
            assertNotSame(array(outside), array(be.zeros(8)));
        }
    }

    @Test
    void tooSmallAndFarTooLargeArraysAreNotHandedOut() {
        float[] small, large;
        try (Scope s = be.openScope()) {
            small = array(be.zeros(10));
            large = array(be.zeros(100));
        }
        try (Scope s = be.openScope()) {
            float[] got = array(be.zeros(20));
            assertNotSame(small, got);
            assertNotSame(large, got, "more than twice the size needed");
        }
    }

    @Test
    void scopesCloseInnermostFirst() {
        Scope outer = be.openScope();
        Scope inner = be.openScope();
        assertThrows(IllegalStateException.class, outer::close);
        inner.close();
        outer.close();
        assertThrows(IllegalStateException.class, () -> outer.keep(be.zeros(1)));
    }
}
