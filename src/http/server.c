/* placeholder until the real file lands */
typedef int placeholder_server;
