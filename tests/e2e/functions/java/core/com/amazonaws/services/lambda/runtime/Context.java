// The shape of aws-lambda-java-core's Context (the library a Java function's
// jar carries; not in Debian), for the tests' functions to compile against.
package com.amazonaws.services.lambda.runtime;

public interface Context {
  String getAwsRequestId();
  String getLogGroupName();
  String getLogStreamName();
  String getFunctionName();
  String getFunctionVersion();
  String getInvokedFunctionArn();
  CognitoIdentity getIdentity();
  ClientContext getClientContext();
  int getRemainingTimeInMillis();
  int getMemoryLimitInMB();
  LambdaLogger getLogger();
}
