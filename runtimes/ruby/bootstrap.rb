# runtimes/ruby/bootstrap.rb -- tarn's runtime interface client for the
# ruby3.x runtimes: speaks the Lambda Runtime API (2018-06-01) on
# AWS_LAMBDA_RUNTIME_API and calls the user's handler the way Lambda's Ruby
# runtime does.
#
# Why its own client: Lambda's (aws_lambda_ric) is a gem that is not in
# Debian; this one needs Ruby's standard library only (socket, json).
#
# Contract (Lambda's Ruby runtime):
# - _HANDLER is `file.method` (a top-level method of file.rb under
#   LAMBDA_TASK_ROOT, which may sit in a folder: `dir/file.method`) or
#   `file.Module::Class.method` (a class method). It is called as
#   handler(event:, context:); the event is the parsed JSON payload.
# - The context answers aws_request_id, invoked_function_arn,
#   function_name, function_version, memory_limit_in_mb (a String, as
#   Lambda's), log_group_name, log_stream_name, deadline_ms, identity,
#   client_context and get_remaining_time_in_millis.
# - The result goes back as JSON (nil is null). An exception is reported as
#   {"errorMessage","errorType":"Function<Class>","stackTrace":[...]}; one
#   while loading the handler's file as "Init<Class>" to init/error, after
#   which the process exits 1.
#
# Invariants:
#   (1) One connection to the Runtime API, kept alive; a failure to reach it
#       ends the process (tarn starts another instance).
#   (2) stdout and stderr are unbuffered, so a function's output is in its
#       log before its answer.
require "json"
require "socket"

$stdout.sync = true
$stderr.sync = true

module TarnRuntime
  API_PREFIX = "/2018-06-01/runtime"

  # A minimal HTTP/1.1 client over one kept-alive TCP connection (1).
  class Api
    def initialize(address)
      host, port = address.split(":", 2)
      @host = host
      @port = Integer(port || 80)
      @sock = nil
    end

    def request(method, path, body = "", headers = {})
      connect if @sock.nil?
      body = body.b
      head = +"#{method} #{API_PREFIX}#{path} HTTP/1.1\r\nHost: #{@host}:#{@port}\r\n"
      headers.each { |k, v| head << "#{k}: #{v}\r\n" }
      head << "Content-Length: #{body.bytesize}\r\n\r\n"
      @sock.write(head.b + body)
      read_response
    end

    private

    def connect
      @sock = TCPSocket.new(@host, @port)
      @sock.setsockopt(Socket::IPPROTO_TCP, Socket::TCP_NODELAY, 1)
    end

    def read_line
      line = @sock.gets("\r\n")
      raise EOFError, "the Runtime API closed the connection" if line.nil?
      line.chomp("\r\n")
    end

    def read_response
      status = read_line.split(" ", 3)[1].to_i
      headers = {}
      while (line = read_line) != ""
        name, value = line.split(":", 2)
        headers[name.strip.downcase] = value.to_s.strip
      end
      body = +""
      if headers["transfer-encoding"].to_s.downcase.include?("chunked")
        loop do
          size = read_line.split(";", 2)[0].to_i(16)
          if size.zero?
            nil while read_line != ""
            break
          end
          body << @sock.read(size)
          read_line
        end
      elsif headers["content-length"]
        n = headers["content-length"].to_i
        body = @sock.read(n) if n > 0
        raise EOFError, "the Runtime API closed the connection" if body.nil? || body.bytesize < n
      end
      if headers["connection"].to_s.downcase == "close"
        @sock.close
        @sock = nil
      end
      [status, headers, body.force_encoding(Encoding::UTF_8)]
    end
  end

  # The context object of one invocation.
  class LambdaContext
    attr_reader :aws_request_id, :invoked_function_arn, :log_group_name, :log_stream_name,
                :function_name, :memory_limit_in_mb, :function_version, :identity,
                :client_context, :deadline_ms

    def initialize(headers)
      @aws_request_id = headers["lambda-runtime-aws-request-id"]
      @invoked_function_arn = headers["lambda-runtime-invoked-function-arn"]
      @deadline_ms = headers["lambda-runtime-deadline-ms"].to_i
      @log_group_name = ENV["AWS_LAMBDA_LOG_GROUP_NAME"]
      @log_stream_name = ENV["AWS_LAMBDA_LOG_STREAM_NAME"]
      @function_name = ENV["AWS_LAMBDA_FUNCTION_NAME"]
      @memory_limit_in_mb = ENV["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
      @function_version = ENV["AWS_LAMBDA_FUNCTION_VERSION"]
      @identity = json_header(headers["lambda-runtime-cognito-identity"])
      @client_context = json_header(headers["lambda-runtime-client-context"])
    end

    def get_remaining_time_in_millis
      now = Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond)
      [@deadline_ms - now, 0].max
    end

    private

    def json_header(value)
      value.nil? || value.empty? ? nil : JSON.parse(value)
    rescue JSON::ParserError
      nil
    end
  end

  def self.error_document(err, prefix)
    {
      "errorMessage" => err.message,
      "errorType" => "#{prefix}<#{err.class}>",
      "stackTrace" => err.backtrace || []
    }
  end

  # Loads the handler's file and returns a callable (event, context) -> result.
  def self.load_handler(spec, task_root)
    file, method = spec.to_s.split(".", 2)
    if file.nil? || file.empty? || method.nil? || method.empty?
      raise ArgumentError, "Invalid handler '#{spec}': expected 'file.method' or " \
                           "'file.Module::Class.method'"
    end
    require File.expand_path(file, task_root)
    if method.include?(".")
      owner, name = method.rpartition(".").values_at(0, 2)
      target = Object.const_get(owner)
      ->(event, context) { target.public_send(name, event: event, context: context) }
    else
      main = TOPLEVEL_BINDING.receiver
      ->(event, context) { main.__send__(method, event: event, context: context) }
    end
  end

  def self.invoke(api, handler, status, headers, body)
    id = headers["lambda-runtime-aws-request-id"]
    raise EOFError, "GET next answered #{status}: #{body}" if status != 200 || id.nil?
    if headers["lambda-runtime-trace-id"]
      ENV["_X_AMZN_TRACE_ID"] = headers["lambda-runtime-trace-id"]
    else
      ENV.delete("_X_AMZN_TRACE_ID")
    end
    begin
      event = body.empty? ? nil : JSON.parse(body)
      context = LambdaContext.new(headers)
      result = JSON.generate(handler.call(event, context))
    rescue Exception => e # everything the handler raises is its error, as Lambda's
      raise if e.is_a?(SystemExit) || e.is_a?(Interrupt)
      doc = error_document(e, "Function")
      $stderr.puts("Error raised from handler method\n#{JSON.pretty_generate(doc)}")
      post(api, "/invocation/#{id}/error", JSON.generate(doc),
           "Lambda-Runtime-Function-Error-Type" => "Unhandled")
      return
    end
    post(api, "/invocation/#{id}/response", result)
  end

  def self.post(api, path, body, headers = {})
    status, _, answer = api.request("POST", path, body,
                                    { "Content-Type" => "application/json" }.merge(headers))
    $stderr.puts("tarn runtime: POST #{path} answered #{status}: #{answer}") unless status / 100 == 2
  end

  def self.main
    api = Api.new(ENV.fetch("AWS_LAMBDA_RUNTIME_API"))
    task_root = ENV.fetch("LAMBDA_TASK_ROOT", "/var/task")
    Dir.chdir(task_root)
    begin
      handler = load_handler(ENV["_HANDLER"], task_root)
    rescue Exception => e # a syntax error is a ScriptError, not a StandardError
      raise if e.is_a?(SystemExit) || e.is_a?(Interrupt)
      doc = error_document(e, "Init")
      $stderr.puts("Init error when loading handler #{ENV['_HANDLER']}\n" \
                   "#{JSON.pretty_generate(doc)}")
      post(api, "/init/error", JSON.generate(doc),
           "Lambda-Runtime-Function-Error-Type" => doc["errorType"])
      exit(1)
    end
    loop do
      status, headers, body = api.request("GET", "/invocation/next")
      invoke(api, handler, status, headers, body)
    end
  end
end

TarnRuntime.main if $PROGRAM_NAME == __FILE__
