-- pktgen Lua script: run both ports at 64 B for 4 s, then print the summed rx
-- rate each second for 5 s ("VHD-RATE ...") and the mean ("VHD-RESULT ..."), quit.
-- Port 0 sends to port 1's MAC and back, so a learning switch sees unicast.
pktgen.screen("off")
pktgen.set_mac("0", "dst", "00:00:00:00:00:02")
pktgen.set_mac("1", "dst", "00:00:00:00:00:01")
pktgen.set("all", "size", 64)
pktgen.start("all")
pktgen.delay(4000)
local total = 0
for i = 1, 5 do
  pktgen.delay(1000)
  local r = pktgen.portStats("all", "rate")
  local s = r[0].pkts_rx + r[1].pkts_rx
  total = total + s
  print(string.format("VHD-RATE rx_pps %d tx_pps %d", s, r[0].pkts_tx + r[1].pkts_tx))
end
print(string.format("VHD-RESULT mean_rx_pps %d", total // 5))
pktgen.stop("all")
pktgen.delay(500)
pktgen.quit()
