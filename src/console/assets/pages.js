// Small helpers of the console's other pages: the patrol sheet's print button.
'use strict';

(function () {
  const print = document.getElementById('print');
  if (print) print.addEventListener('click', () => window.print());
})();
