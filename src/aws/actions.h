// The action handlers of the AWS endpoints (endpoint.cc routes to them).
// Each answers through `done` exactly once; a handler that needs the store
// continues on the blocking pool (AwsCall::ctx->run_blocking).
#pragma once

#include <memory>

#include "aws/endpoint.h"

namespace triggers::aws {

using Call = std::shared_ptr<AwsCall>;

// EventBridge (eventbridge.cc).
void PutEvents(Call call, Done done);

// SQS: queues (sqs_queues.cc).
void GetQueueUrl(Call call, Done done);
void ListQueues(Call call, Done done);
void GetQueueAttributes(Call call, Done done);
// SQS: messages (sqs_receive.cc, sqs_settle.cc, sqs_send.cc).
void ReceiveMessage(Call call, Done done);
void DeleteMessage(Call call, Done done);
void DeleteMessageBatch(Call call, Done done);
void ChangeMessageVisibility(Call call, Done done);
void ChangeMessageVisibilityBatch(Call call, Done done);
void SendMessage(Call call, Done done);
void SendMessageBatch(Call call, Done done);

}  // namespace triggers::aws
