package esdnative.backend;

import esdnative.backend.cpu.CpuBackend;
import esdnative.tensor.Storage;
import esdnative.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** ScopeStack's disown: a disowned allocation survives every enclosing scope's close (a CUDA graph's output). */
class ScopeStackTest {
    private final CpuBackend be = new CpuBackend();

    @Test
    void aDisownedAllocationIsRecycledByNoScope() {
        List<Storage> recycled = new ArrayList<>();
        ScopeStack<Storage> scopes = new ScopeStack<>(Tensor::storage, recycled::add);
        Tensor disowned = be.zeros(4), other = be.zeros(4);
        try (Scope outer = scopes.open()) {
            try (Scope inner = scopes.open()) {
                scopes.own(disowned.storage());
                scopes.own(other.storage());
                inner.keep(disowned); // now the outer scope's
            }
            assertEquals(List.of(other.storage()), recycled);
            scopes.disown(disowned);
        }
        assertEquals(List.of(other.storage()), recycled, "the outer scope's close recycles nothing more");
    }
}
