// Handlers of the HTTP API, one function per route (see the table in router.cc).
#pragma once

#include "api/router.h"

namespace triggers::api {

Response GetHealth(Context& ctx, const Call& call);
void GetHealthLive(Context& ctx, const Call& call, Respond respond);
Response GetHealthReady(Context& ctx, const Call& call);
Response GetMetrics(Context& ctx, const Call& call);
void GetUi(Context& ctx, const Call& call, Respond respond);
void GetUiAsset(Context& ctx, const Call& call, Respond respond);
void GetOpenApi(Context& ctx, const Call& call, Respond respond);
void GetRoot(Context& ctx, const Call& call, Respond respond);

Response PostKey(Context& ctx, const Call& call);
Response ListKeys(Context& ctx, const Call& call);
Response DeleteKey(Context& ctx, const Call& call);

void PostEvent(Context& ctx, const Call& call, Respond respond);
void PostEventBatch(Context& ctx, const Call& call, Respond respond);
Response ListEvents(Context& ctx, const Call& call);
Response GetEvent(Context& ctx, const Call& call);
void StreamEvents(Context& ctx, const Call& call, Respond respond);
Response GetStats(Context& ctx, const Call& call);

Response PostSubscription(Context& ctx, const Call& call);
Response ListSubscriptions(Context& ctx, const Call& call);
Response GetSubscription(Context& ctx, const Call& call);
Response PatchSubscription(Context& ctx, const Call& call);
Response DeleteSubscription(Context& ctx, const Call& call);
Response RotateSecret(Context& ctx, const Call& call);
Response ListDeliveries(Context& ctx, const Call& call);
Response GetDelivery(Context& ctx, const Call& call);
Response RetryDelivery(Context& ctx, const Call& call);
Response ReplaySubscription(Context& ctx, const Call& call);
void ReceiveMessages(Context& ctx, const Call& call, Respond respond);
Response AckMessages(Context& ctx, const Call& call);
Response NackMessages(Context& ctx, const Call& call);

// Shared helpers.
std::string DeliverySummaryJson(Context& ctx, const std::string& tenant,
                                const std::string& event_id);
// Parses ?limit= (1-1000, default 100) and ?after= (a cursor of ids with
// `prefix`). Validation status on bad input.
Status ParseListParams(std::string_view query, std::string_view prefix, int* limit,
                       std::string* after_id);

}  // namespace triggers::api
