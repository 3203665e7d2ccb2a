package example;

// Fails while its class initialises (before any invocation).
public class BrokenInit {
  static {
    if (true)
      throw new IllegalStateException("cannot load the model");
  }

  public static String handleRequest(String s) {
    return s;
  }
}
