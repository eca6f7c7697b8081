package esdnative.backend.cuda;

/** A CUDA driver, cuBLAS or kernel failure; the message names the backend operation and the CUDA error. */
public final class CudaException extends RuntimeException {
    public CudaException(String message) { super(message); }

    public CudaException(String message, Throwable cause) { super(message, cause); }
}
