# tests/e2e/functions/ruby/app.rb -- handlers the Ruby end-to-end tests call
# (one file, a handler per behaviour; the test picks it with Handler).
require "json"
require_relative "lib/greeting"

# Top-level code runs once per instance (init): the counter shows reuse.
$init_count = ($init_count || 0) + 1
$invocations = 0

def echo(event:, context:)
  $invocations += 1
  puts "echo called with #{JSON.generate(event)}"
  {
    "event" => event,
    "request_id" => context.aws_request_id,
    "function_name" => context.function_name,
    "function_version" => context.function_version,
    "memory" => context.memory_limit_in_mb,
    "arn" => context.invoked_function_arn,
    "remaining_ms" => context.get_remaining_time_in_millis,
    "deadline_ms" => context.deadline_ms,
    "log_group" => context.log_group_name,
    "log_stream" => context.log_stream_name,
    "client_context" => context.client_context,
    "trace_id" => ENV["_X_AMZN_TRACE_ID"],
    "init_count" => $init_count,
    "invocations" => $invocations,
    "greeting" => Greeting.hello("ruby"),
    "ruby" => RUBY_VERSION
  }
end

def env(event:, context:)
  keys = event.is_a?(Hash) ? event["keys"] : nil
  return ENV.to_h unless keys
  keys.to_h { |k| [k, ENV[k]] }
end

def fail(event:, context:)
  raise ArgumentError, "something went wrong: #{event['why']}"
end

def sleep_for(event:, context:)
  sleep(event.fetch("seconds", 10).to_f)
  { "slept" => event["seconds"] }
end

def nothing(event:, context:)
  nil
end

def layers(event:, context:)
  require "tarn_layer_lib"
  require "tarnfoo"
  { "lib" => TarnLayerLib.name, "gem" => Tarnfoo::VERSION,
    "gem_path" => ENV["GEM_PATH"], "rubylib" => ENV["RUBYLIB"] }
end

module Shop
  class Orders
    def self.count(event:, context:)
      { "count" => event["items"].length, "request_id" => context.aws_request_id }
    end
  end
end
