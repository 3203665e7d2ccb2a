# A file of the function's own, required relative to app.rb.
module Greeting
  def self.hello(who)
    "hello, #{who}"
  end
end
