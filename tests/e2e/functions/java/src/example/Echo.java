// tests/e2e/functions/java: handlers the Java end-to-end tests call.
package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public class Echo implements RequestHandler<Map<String, Object>, Map<String, Object>> {
  static int inits = 0;
  int invocations = 0;

  public Echo() {
    inits++;
  }

  @Override
  public Map<String, Object> handleRequest(Map<String, Object> event, Context context) {
    invocations++;
    context.getLogger().log("echo called\n");
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("event", event);
    out.put("request_id", context.getAwsRequestId());
    out.put("function_name", context.getFunctionName());
    out.put("function_version", context.getFunctionVersion());
    out.put("memory", context.getMemoryLimitInMB());
    out.put("arn", context.getInvokedFunctionArn());
    out.put("remaining_ms", context.getRemainingTimeInMillis());
    out.put("log_group", context.getLogGroupName());
    out.put("log_stream", context.getLogStreamName());
    out.put("custom", context.getClientContext() == null ? null : context.getClientContext().getCustom());
    out.put("inits", inits);
    out.put("invocations", invocations);
    out.put("java", System.getProperty("java.specification.version"));
    return out;
  }

  public static Map<String, String> env(Map<String, List<String>> event) {
    Map<String, String> out = new LinkedHashMap<>();
    for (String k : event.get("keys"))
      out.put(k, System.getenv(k));
    return out;
  }

  public static String fail(Map<String, Object> event, Context context) {
    throw new IllegalStateException("something went wrong: " + event.get("why"));
  }

  public static String sleep(Map<String, Object> event) throws InterruptedException {
    Thread.sleep(((Number) event.get("seconds")).longValue() * 1000);
    return "slept";
  }
}
