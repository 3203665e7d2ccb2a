package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

// A stream handler: the raw event bytes in, the answer's bytes out.
public class Upper implements RequestStreamHandler {
  @Override
  public void handleRequest(InputStream in, OutputStream out, Context context) throws IOException {
    String s = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    out.write(s.toUpperCase().getBytes(StandardCharsets.UTF_8));
  }
}
