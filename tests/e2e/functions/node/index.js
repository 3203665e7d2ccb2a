// tests/e2e/functions/node/index.js -- Node.js handlers for the Lambda tests.
let initCount = 0;
initCount += 1;
let invocations = 0;

exports.handler = async (event, context) => {
  invocations += 1;
  console.log("node handler called", JSON.stringify(event));
  return {
    event,
    requestId: context.awsRequestId,
    functionName: context.functionName,
    memory: context.memoryLimitInMB,
    remaining: context.getRemainingTimeInMillis(),
    initCount,
    invocations,
    node: process.version,
  };
};

exports.callback = (event, context, callback) => {
  callback(null, { via: "callback", event });
};

exports.fail = async (event) => {
  throw new TypeError("node says no: " + (event.why || "no reason"));
};

exports.env = async (event) => {
  const out = {};
  for (const k of event.keys || []) out[k] = process.env[k] === undefined ? null : process.env[k];
  return out;
};
