// runtimes/java/TarnRuntime.java -- tarn's runtime interface client for the
// java17 and java21 runtimes (run on the host's JDK): speaks the Lambda
// Runtime API (2018-06-01) on AWS_LAMBDA_RUNTIME_API and calls the user's
// handler the way Lambda's Java runtime does.
//
// Why its own client: Lambda's (aws-lambda-java-runtime-interface-client and
// aws-lambda-java-core) is not in Debian; this one needs the JDK only. It is
// one source file, started with the JDK's source launcher (java File.java).
//
// Contract (Lambda's Java runtime):
// - _HANDLER is `package.Class::method` or `package.Class` (then the method
//   is handleRequest). Classes come from /var/task (classes), the jars of
//   /var/task/lib and of /opt/java/lib (layers), in that order.
// - The method is public, static or of an instance made once with the
//   class's no-argument constructor (RequestHandler implementations), and
//   takes (Input[, Context]) or (InputStream, OutputStream[, Context]).
//   Input is the event decoded from JSON into the parameter's type: Map,
//   List, String, a number, Boolean, Object, or a class whose properties
//   (setters or fields) match the JSON keys; the result is encoded to JSON
//   the same way (getters and public fields).
// - Context is the user's com.amazonaws.services.lambda.runtime.Context (the
//   interface of aws-lambda-java-core, which the function's jar carries):
//   tarn answers it through a proxy (getAwsRequestId, getFunctionName,
//   getRemainingTimeInMillis, getLogger, ...), so any version of the
//   interface works.
// - An exception is reported as {"errorMessage","errorType":<class
//   name>,"stackTrace":["pkg.Class.method(File.java:N)",...]}; one while
//   loading the class goes to init/error and the process exits 1.
//
// Invariants:
//   (1) One HTTP connection to the Runtime API, kept alive; failing to reach
//       it ends the process (tarn starts another instance).
//   (2) System.out and System.err are flushed before each answer, so a
//       function's output is in its log before its END line.
import java.io.*;
import java.lang.reflect.*;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.net.Socket;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.util.*;

public final class TarnRuntime {
  static final String CONTEXT = "com.amazonaws.services.lambda.runtime.Context";

  // ---- the Runtime API (1) ----

  static final class Api {
    final String host;
    final int port;
    Socket sock;
    InputStream in;
    OutputStream out;

    Api(String address) {
      int colon = address.lastIndexOf(':');
      host = colon < 0 ? address : address.substring(0, colon);
      port = colon < 0 ? 80 : Integer.parseInt(address.substring(colon + 1));
    }

    static final class Answer {
      int status;
      Map<String, String> headers = new HashMap<>();
      byte[] body;
    }

    Answer request(String method, String path, byte[] body, Map<String, String> headers)
        throws IOException {
      if (sock == null) {
        sock = new Socket(host, port);
        sock.setTcpNoDelay(true);
        in = new BufferedInputStream(sock.getInputStream());
        out = new BufferedOutputStream(sock.getOutputStream());
      }
      StringBuilder head = new StringBuilder();
      head.append(method).append(" /2018-06-01/runtime").append(path).append(" HTTP/1.1\r\n");
      head.append("Host: ").append(host).append(':').append(port).append("\r\n");
      for (Map.Entry<String, String> h : headers.entrySet())
        head.append(h.getKey()).append(": ").append(h.getValue()).append("\r\n");
      head.append("Content-Length: ").append(body.length).append("\r\n\r\n");
      out.write(head.toString().getBytes(StandardCharsets.UTF_8));
      out.write(body);
      out.flush();
      Answer a = new Answer();
      String status = line();
      String[] parts = status.split(" ", 3);
      a.status = Integer.parseInt(parts[1]);
      for (String l = line(); !l.isEmpty(); l = line()) {
        int c = l.indexOf(':');
        if (c > 0)
          a.headers.put(l.substring(0, c).trim().toLowerCase(Locale.ROOT), l.substring(c + 1).trim());
      }
      ByteArrayOutputStream b = new ByteArrayOutputStream();
      if (a.headers.getOrDefault("transfer-encoding", "").toLowerCase(Locale.ROOT).contains("chunked")) {
        for (;;) {
          int n = Integer.parseInt(line().split(";", 2)[0].trim(), 16);
          if (n == 0) {
            while (!line().isEmpty()) {
            }
            break;
          }
          b.write(exactly(n));
          line();
        }
      } else if (a.headers.containsKey("content-length")) {
        b.write(exactly(Integer.parseInt(a.headers.get("content-length"))));
      }
      a.body = b.toByteArray();
      if ("close".equalsIgnoreCase(a.headers.get("connection"))) {
        sock.close();
        sock = null;
      }
      return a;
    }

    private String line() throws IOException {
      StringBuilder s = new StringBuilder();
      for (;;) {
        int c = in.read();
        if (c < 0)
          throw new EOFException("the Runtime API closed the connection");
        if (c == '\n')
          break;
        if (c != '\r')
          s.append((char) c);
      }
      return s.toString();
    }

    private byte[] exactly(int n) throws IOException {
      byte[] b = in.readNBytes(n);
      if (b.length < n)
        throw new EOFException("the Runtime API closed the connection");
      return b;
    }
  }

  // ---- JSON: values are Map (LinkedHashMap), List, String, Long, BigInteger,
  // Double, BigDecimal (when a double would round), Boolean, null ----

  static final class JsonReader {
    final String s;
    int i;

    JsonReader(String s) {
      this.s = s;
    }

    static Object parse(String text) {
      JsonReader r = new JsonReader(text);
      r.ws();
      Object v = r.value();
      r.ws();
      if (r.i != r.s.length())
        throw new IllegalArgumentException("trailing characters after JSON at " + r.i);
      return v;
    }

    void ws() {
      while (i < s.length() && " \t\r\n".indexOf(s.charAt(i)) >= 0)
        i++;
    }

    Object value() {
      if (i >= s.length())
        throw new IllegalArgumentException("unexpected end of JSON");
      char c = s.charAt(i);
      if (c == '{') {
        Map<String, Object> m = new LinkedHashMap<>();
        i++;
        ws();
        if (peek('}'))
          return m;
        do {
          ws();
          String k = string();
          ws();
          expect(':');
          ws();
          m.put(k, value());
          ws();
        } while (peek(','));
        expect('}');
        return m;
      }
      if (c == '[') {
        List<Object> l = new ArrayList<>();
        i++;
        ws();
        if (peek(']'))
          return l;
        do {
          ws();
          l.add(value());
          ws();
        } while (peek(','));
        expect(']');
        return l;
      }
      if (c == '"')
        return string();
      if (s.startsWith("true", i)) {
        i += 4;
        return Boolean.TRUE;
      }
      if (s.startsWith("false", i)) {
        i += 5;
        return Boolean.FALSE;
      }
      if (s.startsWith("null", i)) {
        i += 4;
        return null;
      }
      int start = i;
      while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0)
        i++;
      String num = s.substring(start, i);
      if (num.isEmpty())
        throw new IllegalArgumentException("unexpected '" + c + "' in JSON at " + start);
      if (num.indexOf('.') < 0 && num.indexOf('e') < 0 && num.indexOf('E') < 0) {
        BigInteger b = new BigInteger(num);
        return b.bitLength() < 64 ? (Object) b.longValue() : b;
      }
      BigDecimal d = new BigDecimal(num);
      double dv = d.doubleValue();
      return new BigDecimal(dv).compareTo(d) == 0 || Double.isInfinite(dv) ? (Object) dv : d;
    }

    boolean peek(char c) {
      if (i < s.length() && s.charAt(i) == c) {
        i++;
        return true;
      }
      return false;
    }

    void expect(char c) {
      if (!peek(c))
        throw new IllegalArgumentException("expected '" + c + "' in JSON at " + i);
    }

    String string() {
      expect('"');
      StringBuilder b = new StringBuilder();
      for (;;) {
        if (i >= s.length())
          throw new IllegalArgumentException("unterminated string in JSON");
        char c = s.charAt(i++);
        if (c == '"')
          return b.toString();
        if (c != '\\') {
          b.append(c);
          continue;
        }
        char e = s.charAt(i++);
        switch (e) {
          case 'b': b.append('\b'); break;
          case 'f': b.append('\f'); break;
          case 'n': b.append('\n'); break;
          case 'r': b.append('\r'); break;
          case 't': b.append('\t'); break;
          case 'u': b.append((char) Integer.parseInt(s.substring(i, i + 4), 16)); i += 4; break;
          default: b.append(e);
        }
      }
    }
  }

  static void writeJson(StringBuilder b, Object v) throws ReflectiveOperationException {
    if (v == null) {
      b.append("null");
    } else if (v instanceof String || v instanceof Character || v instanceof Enum) {
      quote(b, v instanceof Enum ? ((Enum<?>) v).name() : v.toString());
    } else if (v instanceof Double || v instanceof Float) {
      double d = ((Number) v).doubleValue();
      b.append(Double.isFinite(d) ? (d == Math.rint(d) && Math.abs(d) < 1e15 ? Long.toString((long) d) + ".0" : Double.toString(d)) : "null");
    } else if (v instanceof Number || v instanceof Boolean) {
      b.append(v);
    } else if (v instanceof Map) {
      b.append('{');
      boolean first = true;
      for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
        if (!first)
          b.append(',');
        first = false;
        quote(b, String.valueOf(e.getKey()));
        b.append(':');
        writeJson(b, e.getValue());
      }
      b.append('}');
    } else if (v instanceof Iterable) {
      b.append('[');
      boolean first = true;
      for (Object o : (Iterable<?>) v) {
        if (!first)
          b.append(',');
        first = false;
        writeJson(b, o);
      }
      b.append(']');
    } else if (v.getClass().isArray()) {
      b.append('[');
      for (int k = 0, n = Array.getLength(v); k < n; k++) {
        if (k > 0)
          b.append(',');
        writeJson(b, Array.get(v, k));
      }
      b.append(']');
    } else {
      Map<String, Object> props = new LinkedHashMap<>();
      for (Field f : v.getClass().getFields())
        if (!Modifier.isStatic(f.getModifiers()))
          props.put(f.getName(), f.get(v));
      for (Method m : v.getClass().getMethods()) {
        if (Modifier.isStatic(m.getModifiers()) || m.getParameterCount() != 0
            || m.getDeclaringClass() == Object.class)
          continue;
        String n = m.getName();
        String p = n.startsWith("get") && n.length() > 3 ? n.substring(3)
            : n.startsWith("is") && n.length() > 2 && (m.getReturnType() == boolean.class
                                                      || m.getReturnType() == Boolean.class)
                ? n.substring(2) : null;
        if (p != null)
          props.put(Character.toLowerCase(p.charAt(0)) + p.substring(1), m.invoke(v));
      }
      writeJson(b, props);
    }
  }

  static void quote(StringBuilder b, String s) {
    b.append('"');
    for (int k = 0; k < s.length(); k++) {
      char c = s.charAt(k);
      switch (c) {
        case '"': b.append("\\\""); break;
        case '\\': b.append("\\\\"); break;
        case '\n': b.append("\\n"); break;
        case '\r': b.append("\\r"); break;
        case '\t': b.append("\\t"); break;
        default:
          if (c < 0x20)
            b.append(String.format("\\u%04x", (int) c));
          else
            b.append(c);
      }
    }
    b.append('"');
  }

  static String toJson(Object v) throws ReflectiveOperationException {
    StringBuilder b = new StringBuilder();
    writeJson(b, v);
    return b.toString();
  }

  // A JSON value as an instance of type t.
  @SuppressWarnings({"unchecked", "rawtypes"})
  static Object convert(Object v, Type t) throws ReflectiveOperationException {
    Class<?> raw = t instanceof Class ? (Class<?>) t
        : t instanceof ParameterizedType ? (Class<?>) ((ParameterizedType) t).getRawType()
        : Object.class;
    Type[] args = t instanceof ParameterizedType ? ((ParameterizedType) t).getActualTypeArguments()
                                                 : new Type[0];
    if (v == null)
      return raw.isPrimitive() ? convert(raw == boolean.class ? Boolean.FALSE : (Object) 0L, raw) : null;
    if (raw == Object.class)
      return v;
    if (raw == String.class)
      return v instanceof String ? v : toJson(v);
    if (raw == boolean.class || raw == Boolean.class)
      return v instanceof Boolean ? v : Boolean.valueOf(v.toString());
    if (raw.isPrimitive() || Number.class.isAssignableFrom(raw)) {
      BigDecimal d = new BigDecimal(v.toString());
      if (raw == int.class || raw == Integer.class) return d.intValue();
      if (raw == long.class || raw == Long.class) return d.longValue();
      if (raw == double.class || raw == Double.class) return d.doubleValue();
      if (raw == float.class || raw == Float.class) return d.floatValue();
      if (raw == short.class || raw == Short.class) return d.shortValue();
      if (raw == byte.class || raw == Byte.class) return d.byteValue();
      if (raw == BigInteger.class) return d.toBigInteger();
      if (raw == BigDecimal.class || raw == Number.class) return d;
      if (raw == char.class) return v.toString().charAt(0);
    }
    if (raw.isEnum())
      return Enum.valueOf((Class<? extends Enum>) raw, v.toString());
    if (Map.class.isAssignableFrom(raw) && v instanceof Map) {
      Map m = raw.isInterface() ? new LinkedHashMap() : (Map) raw.getDeclaredConstructor().newInstance();
      for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet())
        m.put(e.getKey(), convert(e.getValue(), args.length == 2 ? args[1] : Object.class));
      return m;
    }
    if (Collection.class.isAssignableFrom(raw) && v instanceof List) {
      Collection c = !raw.isInterface() ? (Collection) raw.getDeclaredConstructor().newInstance()
          : Set.class.isAssignableFrom(raw) ? new LinkedHashSet() : new ArrayList();
      for (Object o : (List<?>) v)
        c.add(convert(o, args.length == 1 ? args[0] : Object.class));
      return c;
    }
    if (raw.isArray() && v instanceof List) {
      List<?> l = (List<?>) v;
      Object a = Array.newInstance(raw.getComponentType(), l.size());
      for (int k = 0; k < l.size(); k++)
        Array.set(a, k, convert(l.get(k), raw.getComponentType()));
      return a;
    }
    if (v instanceof Map) {
      Constructor<?> ctor = raw.getDeclaredConstructor();
      ctor.setAccessible(true);
      Object o = ctor.newInstance();
      for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet())
        setProperty(o, e.getKey().toString(), e.getValue());
      return o;
    }
    throw new IllegalArgumentException("cannot make a " + raw.getName() + " of " + toJson(v));
  }

  static void setProperty(Object o, String name, Object v) throws ReflectiveOperationException {
    String setter = "set" + Character.toUpperCase(name.charAt(0)) + name.substring(1);
    for (Method m : o.getClass().getMethods()) {
      if (m.getParameterCount() == 1 && m.getName().equalsIgnoreCase(setter)) {
        m.invoke(o, convert(v, m.getGenericParameterTypes()[0]));
        return;
      }
    }
    for (Class<?> c = o.getClass(); c != null && c != Object.class; c = c.getSuperclass()) {
      for (Field f : c.getDeclaredFields()) {
        if (f.getName().equalsIgnoreCase(name) && !Modifier.isStatic(f.getModifiers())) {
          f.setAccessible(true);
          f.set(o, convert(v, f.getGenericType()));
          return;
        }
      }
    }
  }

  // ---- the context object ----

  static final class Invocation {
    String requestId;
    String arn;
    long deadlineMs;
    Object clientContext;
    Object identity;
  }

  // Answers the user's Context interface (whatever version it is).
  static Object contextFor(Class<?> iface, Invocation inv) {
    if (iface == null)
      return null;
    ClassLoader cl = iface.getClassLoader();
    InvocationHandler h = (proxy, m, a) -> {
      switch (m.getName()) {
        case "getAwsRequestId": return inv.requestId;
        case "getLogGroupName": return System.getenv("AWS_LAMBDA_LOG_GROUP_NAME");
        case "getLogStreamName": return System.getenv("AWS_LAMBDA_LOG_STREAM_NAME");
        case "getFunctionName": return System.getenv("AWS_LAMBDA_FUNCTION_NAME");
        case "getFunctionVersion": return System.getenv("AWS_LAMBDA_FUNCTION_VERSION");
        case "getInvokedFunctionArn": return inv.arn;
        case "getMemoryLimitInMB":
          return Integer.parseInt(System.getenv().getOrDefault("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"));
        case "getRemainingTimeInMillis":
          return (int) Math.max(0, inv.deadlineMs - System.currentTimeMillis());
        case "getLogger": return loggerFor(m.getReturnType());
        case "getClientContext": return inv.clientContext == null ? null : view(m.getReturnType(), inv.clientContext);
        case "getIdentity": return inv.identity == null ? null : view(m.getReturnType(), inv.identity);
        case "toString": return "LambdaContext(" + inv.requestId + ")";
        case "hashCode": return System.identityHashCode(proxy);
        case "equals": return proxy == a[0];
        default: return defaultFor(m.getReturnType());
      }
    };
    return Proxy.newProxyInstance(cl, new Class<?>[] {iface}, h);
  }

  // LambdaLogger: log(String), log(byte[]) to stdout.
  static Object loggerFor(Class<?> iface) {
    if (!iface.isInterface())
      return null;
    return Proxy.newProxyInstance(iface.getClassLoader(), new Class<?>[] {iface}, (p, m, a) -> {
      if (m.getName().equals("log") && a != null && a.length >= 1) {
        if (a[0] instanceof byte[])
          System.out.write((byte[]) a[0], 0, ((byte[]) a[0]).length);
        else
          System.out.print(String.valueOf(a[0]));
        System.out.flush();
        return null;
      }
      if (m.getName().equals("toString"))
        return "LambdaLogger";
      return defaultFor(m.getReturnType());
    });
  }

  // ClientContext / CognitoIdentity: getters answered from a JSON object.
  static Object view(Class<?> iface, Object json) {
    if (!iface.isInterface() || !(json instanceof Map))
      return null;
    Map<?, ?> m = (Map<?, ?>) json;
    return Proxy.newProxyInstance(iface.getClassLoader(), new Class<?>[] {iface}, (p, meth, a) -> {
      String n = meth.getName();
      if (!n.startsWith("get") || n.length() < 4)
        return n.equals("toString") ? String.valueOf(json) : defaultFor(meth.getReturnType());
      String key = Character.toLowerCase(n.charAt(3)) + n.substring(4);
      Object v = m.containsKey(key) ? m.get(key) : m.get(n.substring(3));
      if (v instanceof Map && meth.getReturnType().isInterface() && !Map.class.isAssignableFrom(meth.getReturnType()))
        return view(meth.getReturnType(), v);
      return convert(v, meth.getGenericReturnType());
    });
  }

  static Object defaultFor(Class<?> t) {
    if (!t.isPrimitive() || t == void.class)
      return null;
    if (t == boolean.class)
      return false;
    if (t == char.class)
      return '\0';
    try {
      return convert(0L, t);
    } catch (ReflectiveOperationException e) {
      return null;
    }
  }

  // ---- errors ----

  static String errorDocument(Throwable t) throws ReflectiveOperationException {
    Map<String, Object> doc = errorMap(t, 0);
    return toJson(doc);
  }

  static Map<String, Object> errorMap(Throwable t, int depth) {
    Map<String, Object> doc = new LinkedHashMap<>();
    doc.put("errorMessage", t.getMessage() != null ? t.getMessage() : t.getClass().getName());
    doc.put("errorType", t.getClass().getName());
    List<String> trace = new ArrayList<>();
    for (StackTraceElement e : t.getStackTrace()) {
      if (e.getClassName().startsWith("TarnRuntime") || e.getClassName().startsWith("jdk.internal.")
          || e.getClassName().startsWith("java.lang.reflect.Method"))
        continue;
      trace.add(e.getClassName() + "." + e.getMethodName() + "("
                + (e.getFileName() != null ? e.getFileName() + ":" + e.getLineNumber() : "Unknown Source")
                + ")");
    }
    doc.put("stackTrace", trace);
    if (t.getCause() != null && t.getCause() != t && depth < 8)
      doc.put("cause", errorMap(t.getCause(), depth + 1));
    return doc;
  }

  static Throwable unwrap(Throwable t) {
    while (t instanceof InvocationTargetException && t.getCause() != null)
      t = t.getCause();
    return t;
  }

  // ---- the handler ----

  static final class Handler {
    Object target;  // the instance, or null for a static method
    Method method;
    boolean stream;
    boolean withContext;
    Class<?> contextType;
  }

  static ClassLoader userLoader() throws IOException {
    List<URL> urls = new ArrayList<>();
    String task = System.getenv().getOrDefault("LAMBDA_TASK_ROOT", "/var/task");
    urls.add(Paths.get(task).toUri().toURL());
    for (String dir : new String[] {task + "/lib", "/opt/java/lib"}) {
      Path p = Paths.get(dir);
      if (!Files.isDirectory(p))
        continue;
      try (DirectoryStream<Path> jars = Files.newDirectoryStream(p, "*.jar")) {
        List<Path> sorted = new ArrayList<>();
        jars.forEach(sorted::add);
        Collections.sort(sorted);
        for (Path j : sorted)
          urls.add(j.toUri().toURL());
      }
    }
    if (Files.isDirectory(Paths.get("/opt/java")))
      urls.add(Paths.get("/opt/java").toUri().toURL());
    // Above it only the JDK's own classes: the function's never come from the
    // launcher's class path (the working folder, or this client's jar).
    return new URLClassLoader(urls.toArray(new URL[0]), ClassLoader.getPlatformClassLoader());
  }

  static final class InitError extends Exception {
    private static final long serialVersionUID = 1L;
    final String type;

    InitError(String type, String message, Throwable cause) {
      super(message, cause);
      this.type = type;
    }
  }

  static Handler loadHandler(String spec) throws Throwable {
    if (spec == null || spec.isEmpty())
      throw new InitError("java.lang.IllegalArgumentException", "No handler set (_HANDLER)", null);
    int sep = spec.indexOf("::");
    String className = sep < 0 ? spec : spec.substring(0, sep);
    String methodName = sep < 0 ? "handleRequest" : spec.substring(sep + 2);
    ClassLoader cl = userLoader();
    Thread.currentThread().setContextClassLoader(cl);
    Class<?> cls;
    try {
      cls = Class.forName(className, true, cl);
    } catch (ClassNotFoundException e) {
      throw new InitError("java.lang.ClassNotFoundException", "Class not found: " + className, e);
    } catch (ExceptionInInitializerError e) {
      throw e.getCause() != null ? e.getCause() : e;
    }
    Class<?> ctx = null;
    try {
      ctx = Class.forName(CONTEXT, false, cl);
    } catch (ClassNotFoundException e) {
      // a function that never takes a Context need not carry the interface
    }
    Method best = null;
    int bestScore = -1;
    for (Method m : cls.getMethods()) {
      if (!m.getName().equals(methodName) || m.isBridge() || m.isSynthetic())
        continue;
      Class<?>[] p = m.getParameterTypes();
      int score = -1;
      if (p.length == 3 && p[0] == InputStream.class && p[1] == OutputStream.class)
        score = 5;
      else if (p.length == 2 && p[0] == InputStream.class && p[1] == OutputStream.class)
        score = 4;
      else if (p.length == 2 && ctx != null && p[1] == ctx)
        score = 3;
      else if (p.length == 1)
        score = 2;
      else if (p.length == 0)
        score = 1;
      // a generic RequestHandler's handleRequest(Object, Context) loses to its typed one
      if (score >= 0 && p.length > 0 && p[0] == Object.class)
        score -= 1;
      if (score > bestScore) {
        best = m;
        bestScore = score;
      }
    }
    if (best == null)
      throw new InitError("java.lang.NoSuchMethodException",
                          "No public method named " + methodName
                              + " with appropriate method signature found on class " + className,
                          null);
    Handler h = new Handler();
    h.method = best;
    Class<?>[] p = best.getParameterTypes();
    h.stream = p.length >= 2 && p[0] == InputStream.class && p[1] == OutputStream.class;
    h.withContext = (h.stream && p.length == 3) || (!h.stream && p.length == 2);
    h.contextType = h.withContext ? p[p.length - 1] : null;
    if (!Modifier.isStatic(best.getModifiers())) {
      Constructor<?> c = cls.getDeclaredConstructor();
      c.setAccessible(true);
      try {
        h.target = c.newInstance();
      } catch (InvocationTargetException e) {
        throw unwrap(e);
      }
    }
    return h;
  }

  static byte[] call(Handler h, byte[] event, Invocation inv) throws Throwable {
    Object context = h.withContext ? contextFor(h.contextType, inv) : null;
    try {
      if (h.stream) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Object[] args = h.withContext ? new Object[] {new ByteArrayInputStream(event), out, context}
                                      : new Object[] {new ByteArrayInputStream(event), out};
        h.method.invoke(h.target, args);
        return out.toByteArray();
      }
      Object[] args;
      if (h.method.getParameterCount() == 0) {
        args = new Object[0];
      } else {
        String text = new String(event, StandardCharsets.UTF_8);
        Object json = text.isBlank() ? null : JsonReader.parse(text);
        Object input = convert(json, h.method.getGenericParameterTypes()[0]);
        args = h.withContext ? new Object[] {input, context} : new Object[] {input};
      }
      Object result = h.method.invoke(h.target, args);
      if (h.method.getReturnType() == void.class)
        return "null".getBytes(StandardCharsets.UTF_8);
      return toJson(result).getBytes(StandardCharsets.UTF_8);
    } catch (InvocationTargetException e) {
      throw unwrap(e);
    }
  }

  static void post(Api api, String path, String body, Map<String, String> headers) throws IOException {
    post(api, path, body.getBytes(StandardCharsets.UTF_8), headers);
  }

  static void post(Api api, String path, byte[] body, Map<String, String> headers) throws IOException {
    System.out.flush();
    System.err.flush();
    Map<String, String> all = new LinkedHashMap<>();
    all.put("Content-Type", "application/json");
    all.putAll(headers);
    Api.Answer a = api.request("POST", path, body, all);
    if (a.status / 100 != 2)
      System.err.println("tarn runtime: POST " + path + " answered " + a.status + ": "
                         + new String(a.body, StandardCharsets.UTF_8));
  }

  static Object jsonHeader(String v) {
    if (v == null || v.isEmpty())
      return null;
    try {
      return JsonReader.parse(v);
    } catch (RuntimeException e) {
      return null;
    }
  }

  public static void main(String[] argv) throws Exception {
    Api api = new Api(System.getenv("AWS_LAMBDA_RUNTIME_API"));
    Handler h;
    try {
      h = loadHandler(System.getenv("_HANDLER"));
    } catch (Throwable t) {
      String type = t instanceof InitError ? ((InitError) t).type : t.getClass().getName();
      Map<String, Object> doc = errorMap(t, 0);
      doc.put("errorType", type);
      String body = toJson(doc);
      System.err.println("Init error when loading handler " + System.getenv("_HANDLER") + ": " + body);
      post(api, "/init/error", body, Map.of("Lambda-Runtime-Function-Error-Type", type));
      System.exit(1);
      return;
    }
    for (;;) {
      Api.Answer next = api.request("GET", "/invocation/next", new byte[0], Map.of());
      Invocation inv = new Invocation();
      inv.requestId = next.headers.get("lambda-runtime-aws-request-id");
      if (next.status != 200 || inv.requestId == null)
        throw new IOException("GET next answered " + next.status);
      inv.arn = next.headers.get("lambda-runtime-invoked-function-arn");
      inv.deadlineMs = Long.parseLong(next.headers.getOrDefault("lambda-runtime-deadline-ms", "0"));
      inv.clientContext = jsonHeader(next.headers.get("lambda-runtime-client-context"));
      inv.identity = jsonHeader(next.headers.get("lambda-runtime-cognito-identity"));
      String trace = next.headers.get("lambda-runtime-trace-id");
      if (trace != null)
        System.setProperty("com.amazonaws.xray.traceHeader", trace);
      byte[] result;
      try {
        result = call(h, next.body, inv);
      } catch (Throwable t) {
        String body = errorDocument(t);
        System.err.println(body);
        post(api, "/invocation/" + inv.requestId + "/error", body,
             Map.of("Lambda-Runtime-Function-Error-Type", "Unhandled"));
        continue;
      }
      post(api, "/invocation/" + inv.requestId + "/response", result, Map.of());
    }
  }
}
